"""Starting Ray on this machine, or joining a Ray cluster a lab already runs.

Without an address Ray starts *embedded*: a one-machine Ray whose processes listen on
127.0.0.1 only (Ray otherwise binds every interface; a single machine needs no routable
address), with no dashboard and no usage reporting. With ``auto``, ``HOST:PORT`` (the head's
GCS port, 6379 by default) or ``ray://HOST:10001`` (Ray Client) it joins a cluster started with
Ray's own launchers (``ray start``, ``ray up``, KubeRay, SLURM scripts; see docs/scale-out.md).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'realtime-pose[cluster]'"
EMBEDDED_OBJECT_STORE_BYTES = 256 * 1024 * 1024
"""Chunk results are pose arrays (kilobytes): a small object store is plenty."""
CLIENT_ATTEMPTS = 3
"""Ray Client connections tried before giving up; see :func:`_init_ray`."""


class ClusterError(RuntimeError):
    """Ray is missing or the cluster cannot be reached; the message says what to do."""


def import_ray() -> Any:
    """The ``ray`` module, or :class:`ClusterError` with the install hint."""
    try:
        import ray
    except ImportError:
        raise ClusterError(f"distributed analysis needs Ray: {INSTALL_HINT}") from None
    return ray


def ray_available() -> bool:
    """Whether Ray can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def _embedded_environment() -> None:
    # Read by Ray at import: a one-node Ray keeps its node address on the loopback interface,
    # and Ray's servers then listen on 127.0.0.1 alone. Set before the first `import ray`.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")


def _check_loopback_only(allow_beyond_loopback: bool) -> None:
    """Refuse embedded Ray that would listen beyond loopback: Ray read its environment when it
    was imported, so one imported before :func:`_embedded_environment` binds every interface,
    and anyone on the network could then reach the workers (and run code in them)."""
    if "ray" not in sys.modules or os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") == "0":
        return
    if allow_beyond_loopback:
        log.warning(
            "Ray was imported before it was set to listen on 127.0.0.1 only: embedded Ray may "
            "listen on every interface (allowed by allow_beyond_loopback=True)"
        )
        return
    raise ClusterError(
        "Ray was imported before realtime-pose could set it to listen on 127.0.0.1 only, so "
        "embedded Ray would listen on every interface of this machine; refused. Import ray "
        "after starting the analysis (or set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before "
        "importing it), or pass allow_beyond_loopback=True to ray_session if the network is "
        "trusted"
    )


@contextmanager
def ray_session(
    address: str | None = None,
    num_cpus: int | None = None,
    *,
    allow_beyond_loopback: bool = False,
) -> Iterator[Any]:
    """Connect to Ray for the duration of the block and yield the ``ray`` module.

    Parameters
    ----------
    address
        ``None``: start Ray embedded on this machine (loopback only); else a cluster address.
    num_cpus
        CPUs the embedded Ray may use (default: all of this machine's).
    allow_beyond_loopback
        Embedded Ray only: start it even where it can no longer be kept to 127.0.0.1 (``ray``
        was imported first), with a warning. Without it such a session is refused.

    Raises
    ------
    ClusterError
        Ray is not installed, the cluster at ``address`` cannot be reached, or embedded Ray
        cannot be kept to loopback.
    """
    if address is None:
        _check_loopback_only(allow_beyond_loopback)
        _embedded_environment()
    else:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray = import_ray()
    options: dict[str, Any] = {"logging_level": logging.WARNING}
    if address is None:
        options.update(
            num_cpus=num_cpus,
            object_store_memory=EMBEDDED_OBJECT_STORE_BYTES,
            include_dashboard=False,
            log_to_driver=False,
        )
    elif address.startswith("ray://"):
        options.update(address=address)  # Ray Client: the server side owns the rest
    else:
        options.update(address=address, log_to_driver=False)
    try:
        _init_ray(ray, options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = "embedded Ray" if address is None else f"the Ray cluster at {address}"
        raise ClusterError(f"cannot start or reach {where}: {exc}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def _init_ray(ray: Any, options: dict[str, Any]) -> None:
    """``ray.init``, tried again when a Ray Client head fails to start this client's server.

    Ray's client proxy starts one server process per client; now and then (about one connection
    in six on a busy 2-core machine, Ray 2.60) that process dies before it logs anything, and
    the head answers "Initialization failure from server" (Ray raises
    ``ConnectionAbortedError``). A new connection gets a new server process, so the attempt is
    repeated, saying so, before giving up. A head that cannot be reached at all is not retried
    (Ray has already waited for it).
    """
    for attempt in range(1, CLIENT_ATTEMPTS + 1):
        try:
            ray.init(**options)
            return
        except ConnectionAbortedError:
            if not str(options.get("address", "")).startswith("ray://"):
                raise
            if attempt == CLIENT_ATTEMPTS:
                raise
            log.warning(
                "the Ray Client head could not start a server for this connection "
                "(attempt %d of %d); connecting again",
                attempt,
                CLIENT_ATTEMPTS,
            )
            ray.shutdown()


def workers_that_fit(ray: Any, cpus_per_worker: float, gpus_per_worker: float) -> int:
    """How many workers of this size the connected cluster's resources hold (at least 1)."""
    resources = ray.cluster_resources()
    fit = int(resources.get("CPU", 0.0) // cpus_per_worker)
    if gpus_per_worker > 0:
        fit = min(fit, int(resources.get("GPU", 0.0) // gpus_per_worker))
    return max(1, fit)
