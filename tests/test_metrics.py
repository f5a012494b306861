"""Each score on tiny cases worked out by hand, and the Diebold-Mariano test against R.

Reference values for `diebold_mariano` at horizon 1 come from R's forecast package, computed on this machine
(Debian 12 packages `r-base-core` and `r-cran-forecast`): R 4.2.2 Patched (2022-11-10 r83330),
forecast 8.20, with

    library(forecast)
    r <- dm.test(e1, e2, alternative = "two.sided", h = 1, power = 2)
    cat(sprintf("%.17g %.17g\\n", r$statistic, r$p.value))

for each `(e1, e2)` pair in `R_DM_REFERENCES` (the vectors were typed in as `c(...)` exactly as
written below). forecast 8.20's dm.test computes the loss differential, its variance from
`acf(type = "covariance")` (divisor n), the HLN factor sqrt((n + 1 - 2h + h(h - 1)/n) / n) and
`2 * pt(-abs(STATISTIC), df = n - 1)`. The errors are passed as forecasts of y = 0 (error e is
the forecast -e), so the squared errors are exactly those R saw. Above horizon 1 R and statsmodels
weigh the autocovariances differently; that case is checked against the formula by hand.
"""

import math

import numpy as np
import pytest

from pipeline import metrics

Y = np.array([1.0, 2.0, 3.0, 4.0])
Y_HAT = np.array([1.0, 3.0, 2.0, 6.0])  # errors 0, -1, 1, -2


def test_rmse_mae_mape_on_a_hand_case():
    assert metrics.rmse(Y, Y_HAT) == pytest.approx(math.sqrt((0 + 1 + 1 + 4) / 4))
    assert metrics.mae(Y, Y_HAT) == pytest.approx(1.0)
    assert metrics.mape(Y, Y_HAT) == pytest.approx((0 + 1 / 2 + 1 / 3 + 2 / 4) / 4)  # a fraction, not percent


def test_naive_scale_is_the_mean_absolute_one_step_change():
    assert metrics.naive_scale(np.array([10.0, 11.0, 9.0, 9.0, 12.0])) == pytest.approx((1 + 2 + 0 + 3) / 4)
    with pytest.raises(ValueError):
        metrics.naive_scale(np.array([10.0]))


def test_mase_scales_each_forecast_by_its_own_fold():
    # |10 - 11| / 0.5 = 2 and |12 - 9| / 3 = 1
    assert metrics.mase(np.array([10.0, 12.0]), np.array([11.0, 9.0]), np.array([0.5, 3.0])) == pytest.approx(1.5)
    assert metrics.mase(np.array([10.0, 12.0]), np.array([11.0, 9.0]), 2.0) == pytest.approx(1.0)


def test_mase_of_a_constant_train_part_is_undefined_not_inf():
    scale = metrics.naive_scale(np.full(5, 7.0))
    assert scale == 0.0
    assert metrics.mase(np.array([7.0, 8.0]), np.array([7.0, 7.0]), scale) is None
    # one constant fold among several makes the pooled figure undefined too
    assert metrics.mase(np.array([7.0, 8.0]), np.array([7.0, 7.0]), np.array([1.0, 0.0])) is None


def test_rmse_ratio_compares_on_the_same_rows():
    y = np.array([1.0, 2.0, 3.0])
    assert metrics.rmse_ratio(y, np.array([1.0, 2.0, 4.0]), np.array([2.0, 2.0, 2.0])) == pytest.approx(
        math.sqrt(1 / 2)
    )
    assert metrics.rmse_ratio(y, y + 1, y) is None  # an exact baseline leaves nothing to divide by


def test_directional_accuracy_excludes_unchanged_days_and_counts_no_call_as_wrong():
    y_cutoff = np.full(5, 10.0)
    y = np.array([11.0, 9.0, 10.0, 12.0, 8.0])  # up, down, unchanged, up, down
    y_hat = np.array([10.5, 10.2, 11.0, 10.0, 9.0])  # up (right), up (wrong), -, no change (wrong), down (right)
    assert metrics.directional_accuracy(y, y_hat, y_cutoff) == (0.5, 4, 1)


def test_the_naive_forecast_calls_no_direction_and_scores_zero():
    y_cutoff = np.array([10.0, 11.0, 12.0])
    assert metrics.directional_accuracy(np.array([11.0, 12.0, 11.0]), y_cutoff, y_cutoff) == (0.0, 3, 0)


def test_directional_accuracy_without_any_move_is_undefined():
    flat = np.full(4, 5.0)
    assert metrics.directional_accuracy(flat, flat + 1, flat) == (None, 0, 4)


def test_interval_coverage_counts_the_closed_interval_and_width_is_the_mean():
    y_lo, y_hi = np.array([0.0, 2.0, 3.5, 3.0]), np.array([2.0, 3.0, 4.0, 4.0])
    assert metrics.interval_coverage(Y, y_lo, y_hi) == pytest.approx(0.75)  # 3 is outside [3.5, 4]
    assert metrics.interval_width(y_lo, y_hi) == pytest.approx((2 + 1 + 0.5 + 1) / 4)


# y = 1, 2, 3, 4 against [0, 2], [2.5, 3], [3, 3.5], [3.5, 3.8]: inside (on the bound), 0.5 below,
# inside (on the bound), 0.2 above. Widths 2, 0.5, 0.5, 0.3. alpha = 0.2 (80% intervals).
LO, HI, ALPHA_80 = np.array([0.0, 2.5, 3.0, 3.5]), np.array([2.0, 3.0, 3.5, 3.8]), 0.2


def test_interval_score_adds_2_over_alpha_times_each_miss_to_the_width():
    assert metrics.interval_coverage(Y, LO, HI) == pytest.approx(0.5)
    assert metrics.interval_width(LO, HI) == pytest.approx((2 + 0.5 + 0.5 + 0.3) / 4)
    # 2 / alpha = 10: (2 + (0.5 + 10 * 0.5) + 0.5 + (0.3 + 10 * 0.2)) / 4
    assert metrics.interval_score(Y, LO, HI, ALPHA_80) == pytest.approx(10.3 / 4, rel=1e-12)
    # at 95% a miss costs 2 / 0.05 = 40 per unit outside
    assert metrics.interval_score(Y, LO, HI, 0.05) == pytest.approx((2 + 20.5 + 0.5 + 8.3) / 4, rel=1e-12)
    # an interval that covers everything pays its width alone
    assert metrics.interval_score(Y, Y - 1, Y + 1, ALPHA_80) == pytest.approx(2.0)


def test_interval_pinball_is_the_mean_of_the_two_quantile_losses():
    # lower bound at tau = 0.1: above it costs 0.1 per unit, below it 0.9:
    # 0.1 * 1 + 0.9 * 0.5 + 0 + 0.1 * 0.5 = 0.6, mean 0.15
    # upper bound at tau = 0.9: below it costs 0.1 per unit, above it 0.9:
    # 0.1 * 1 + 0.1 * 1 + 0.1 * 0.5 + 0.9 * 0.2 = 0.43, mean 0.1075
    assert metrics.interval_pinball(Y, LO, HI, ALPHA_80) == pytest.approx((0.15 + 0.1075) / 2, rel=1e-12)
    # the two scores rank intervals alike: pinball = alpha / 4 * interval score
    assert metrics.interval_pinball(Y, LO, HI, ALPHA_80) == pytest.approx(ALPHA_80 / 4 * 10.3 / 4, rel=1e-12)


R_DM_REFERENCES = [
    pytest.param(
        [0.5, -1.2, 0.3, 2.1, -0.7, 1.5, -0.4, 0.9, -1.8, 0.6],
        [0.4, -1.0, 0.5, 1.7, -0.9, 1.1, -0.2, 0.8, -1.5, 0.7],
        1.9493993164020813,
        0.083046789872464624,
        id="n10-first-worse-not-significant",
    ),
    pytest.param(
        [1.0, -2.0, 3.0, -1.5, 2.5, -0.5, 1.5, -2.5, 0.5, 2.0, -1.0, 3.5],
        [0.2, -0.4, 0.6, -0.3, 0.5, -0.1, 0.3, -0.5, 0.1, 0.4, -0.2, 0.7],
        3.744276678230023,
        0.0032419974082718251,
        id="n12-first-worse-significant",
    ),
    pytest.param(
        [
            -0.31,
            1.12,
            0.05,
            -0.87,
            0.44,
            0.29,
            -1.36,
            0.71,
            0.18,
            -0.52,
            0.93,
            -0.08,
            0.61,
            -1.04,
            0.37,
            0.22,
            -0.66,
            1.27,
            -0.19,
            0.84,
        ],
        [
            0.27,
            -0.95,
            0.48,
            0.73,
            -0.21,
            -0.58,
            1.09,
            0.14,
            -0.82,
            0.39,
            -0.47,
            1.18,
            -0.06,
            0.55,
            -0.91,
            0.33,
            0.76,
            -0.12,
            1.02,
            -0.64,
        ],
        0.43144553159892324,
        0.6710002591394113,
        id="n20-no-difference",
    ),
    pytest.param(
        [0.1, -0.3, 0.2, 0.4, -0.1, 0.0, 0.3, -0.2, 0.1, -0.4, 0.2, 0.1, -0.1, 0.3, -0.2],
        [0.5, -0.2, 0.9, -0.6, 0.3, 1.1, -0.8, 0.4, -0.7, 0.6, 0.2, -0.9, 0.5, 0.8, -0.3],
        -3.9386474808077825,
        0.0014845108064764087,
        id="n15-first-better-significant",
    ),
]


def dm_of_errors(e1: list[float], e2: list[float], horizon: int = 1) -> tuple[float, float] | None:
    """`diebold_mariano` of two forecasts of y = 0 whose errors are `e1` and `e2`."""
    return metrics.diebold_mariano(np.zeros(len(e1)), -np.array(e1), -np.array(e2), horizon)


@pytest.mark.parametrize(("e1", "e2", "statistic", "p_value"), R_DM_REFERENCES)
def test_diebold_mariano_matches_r_forecast_dm_test(e1, e2, statistic, p_value):
    assert dm_of_errors(e1, e2) == pytest.approx((statistic, p_value), rel=1e-12)


def test_diebold_mariano_on_a_case_solved_by_hand():
    # d = 1, 4, 9: mean 14/3, variance (divisor n) 98/9, so mean / sqrt(var / 3) = sqrt(6) and the
    # HLN factor sqrt(2/3) makes it 2; with 2 df, P(|t| > 2) = 1 - 2 / sqrt(6).
    statistic, p_value = dm_of_errors([1.0, 2.0, 3.0], [0.0, 0.0, 0.0])
    assert statistic == pytest.approx(2.0, rel=1e-12)
    assert p_value == pytest.approx(1 - 2 / math.sqrt(6), rel=1e-12)


def test_diebold_mariano_at_horizon_2_uses_one_newey_west_lag_and_the_hln_factor_for_h():
    # d = 4, 0, 4, 0: mean 2, deviations +-2, autocovariances (divisor n) g0 = 4, g1 = -3. One lag
    # with Bartlett weight 1 - 1/2: long-run variance 4 + 2 * (1/2) * (-3) = 1, so
    # mean / sqrt(1 / 4) = 4 (lag 0 alone would give 2). HLN at n = 4, h = 2:
    # sqrt((4 + 1 - 4 + 2/4) / 4) = sqrt(3/8) (h = 1 would give sqrt(3/4)): statistic sqrt(6).
    # Student's t with 3 df: P(|t| > sqrt(6)) = 1 - 2 (sqrt(2)/3 + atan(sqrt(2))) / pi.
    statistic, p_value = dm_of_errors([2.0, 0.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0], horizon=2)
    assert statistic == pytest.approx(math.sqrt(6), rel=1e-12)
    assert p_value == pytest.approx(1 - 2 * (math.sqrt(2) / 3 + math.atan(math.sqrt(2))) / math.pi, rel=1e-12)


def test_diebold_mariano_is_antisymmetric():
    e1, e2, *_ = R_DM_REFERENCES[2].values
    for horizon in (1, 3):
        forward, backward = dm_of_errors(e1, e2, horizon), dm_of_errors(e2, e1, horizon)
        assert backward[0] == pytest.approx(-forward[0]) and backward[1] == pytest.approx(forward[1])


def test_diebold_mariano_without_variance_or_days_is_undefined():
    e = [0.5, -1.0, 2.0]
    assert dm_of_errors(e, e) is None  # R: "Variance of DM statistic is zero"; statsmodels: NaN
    assert dm_of_errors([1.0, 1.0, 1.0], [0.0, 0.0, 0.0]) is None  # constant d: statsmodels gives inf
    assert dm_of_errors([1.0], [0.0]) is None
    assert dm_of_errors([1.0, 2.0, 3.0], [0.0, 0.0, 0.0], horizon=3) is None  # no more days than the horizon
    assert dm_of_errors([1.0, 2.0, 3.0, 5.0], [0.0, 0.0, 0.0, 0.0], horizon=3) is not None
