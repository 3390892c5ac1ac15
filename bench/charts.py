"""Charts of calls per second (accepted, throttled) against the available quota; matplotlib
is optional (`pip install -e '.[bench]'`): without it the figures are still written."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ACCEPTED, THROTTLED, QUOTA = "#1f77b4", "#d62728", "#444444"


def available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _panel(
    ax: Any, series: dict[str, list[float]], quota: list[tuple[float, float]], end: float
) -> None:
    """Accepted and throttled calls per second as steps; the quota as a dashed step line."""
    n = len(series["ok"])
    xs = list(range(n + 1))
    ax.stairs(series["ok"], xs, color=ACCEPTED, linewidth=1.6, label="accepted/s")
    ax.stairs(
        series["throttled"],
        xs,
        color=THROTTLED,
        linewidth=1.2,
        fill=True,
        alpha=0.5,
        label="throttled/s",
    )
    qx, qy = [], []
    for i, (start, rate) in enumerate(quota):
        stop = quota[i + 1][0] if i + 1 < len(quota) else end
        qx += [start, stop]
        qy += [rate, rate]
    ax.plot(qx, qy, color=QUOTA, linestyle="--", linewidth=1.2, label="quota")
    ax.set_xlim(0, max(end, n))
    ax.set_ylim(0, max([*qy, *series["ok"], *series["throttled"], 1]) * 1.15)
    ax.grid(alpha=0.3)


def quota_use(data: dict[str, Any], path: Path) -> Path:
    """One row per quota level, one column per client."""
    plt = _pyplot()
    levels = data["levels"]
    clients = list(levels[0]["clients"])
    fig, axes = plt.subplots(
        len(levels), len(clients), figsize=(4.2 * len(clients), 2.9 * len(levels)), squeeze=False
    )
    for r, level in enumerate(levels):
        end = max(len(f["series"]["ok"]) for f in level["clients"].values())
        for c, client in enumerate(clients):
            f = level["clients"][client]
            ax = axes[r][c]
            _panel(ax, f["series"], [(0.0, level["rate"])], end)
            ax.set_title(
                f"{client} · {level['level']}\n{f['quota_share']:.1%} of quota, "
                f"{f['throttled_share']:.1%} throttled, {f['chunks_lost']} lost",
                fontsize=9,
            )
            if c == 0:
                ax.set_ylabel("calls/s")
            if r == len(levels) - 1:
                ax.set_xlabel("seconds")
    axes[0][0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Quota use: calls per second, each client alone (emulator latency 50 ms ± 50%)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def shared_quota(data: dict[str, Any], path: Path) -> Path:
    """One panel per client; the available write quota steps down by 40% and back."""
    plt = _pyplot()
    clients = list(data["clients"])
    fig, axes = plt.subplots(len(clients), 1, figsize=(11, 3.4 * len(clients)), squeeze=False)
    end = 3 * data["phase_s"]
    for i, client in enumerate(clients):
        f = data["clients"][client]
        quota = [(p["start_s"], p["available_per_s"]) for p in f["phases"]]
        ax = axes[i][0]
        _panel(ax, f["series"], quota, end)
        used = ", ".join(f"{p['share_of_available']:.0%}" for p in f["phases"])
        t90 = ", ".join(
            "never" if p["time_to_90_s"] is None else f"{p['time_to_90_s']:.1f} s"
            for p in f["phases"][1:]
        )
        ax.set_title(
            f"{client}: share of the available rate per phase {used}; ≥90% again after {t90}; "
            f"{f['chunks_lost']} lost",
            fontsize=10,
        )
        ax.set_ylabel("calls/s")
        for p in f["phases"][1:]:
            ax.axvline(p["start_s"], color=QUOTA, alpha=0.3)
    axes[-1][0].set_xlabel("seconds")
    axes[0][0].legend(fontsize=8, loc="lower left")
    fig.suptitle("Shared quota: another tenant takes 40% of the write quota, then gives it back")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
