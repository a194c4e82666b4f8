"""Which OpenFlow framework the shim runs on: Ryu (the default) or os-ken.

os-ken is the maintained fork of Ryu with the same API under another package
name. :func:`select` is called once, before the shim's modules are imported;
they then take every framework name from :data:`fw`. os-ken's own hub
defaults to native threads, under which the shim's loops would touch the
engine from several threads at once: it is told to use eventlet, like Ryu.
Neither framework monkey-patches anything here (grpcio does not survive it).
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType, SimpleNamespace

__all__ = ["CHOICES", "FrameworkMissing", "select", "fw"]

CHOICES = ("ryu", "os-ken")
_PACKAGE = {"ryu": "ryu", "os-ken": "os_ken"}
_INSTALL = {
    "ryu": 'pip install "setuptools<67" wheel && pip install --no-build-isolation ryu==4.34',
    "os-ken": "pip install os-ken",
}

fw = SimpleNamespace(name="")


class FrameworkMissing(RuntimeError):
    """The requested framework is not installed (the message says what to install)."""


def _patch_eventlet() -> None:
    # Ryu 4.34 imports eventlet.wsgi.ALREADY_HANDLED, gone from newer eventlet.
    import warnings

    warnings.filterwarnings("ignore", message=r"(?s).*Eventlet is deprecated")
    import eventlet.wsgi

    if not hasattr(eventlet.wsgi, "ALREADY_HANDLED"):
        eventlet.wsgi.ALREADY_HANDLED = object()


def _module(package: str, name: str) -> ModuleType:
    return importlib.import_module(f"{package}.{name}")


def select(name: str) -> SimpleNamespace:
    """Load ``name`` ("ryu" or "os-ken") and expose its modules on :data:`fw`."""
    if name not in CHOICES:
        raise ValueError(f"southbound must be one of {', '.join(CHOICES)}, not {name!r}")
    if fw.name:
        if fw.name != name:
            raise RuntimeError(f"the southbound is already {fw.name}; cannot switch to {name}")
        return fw
    package = _PACKAGE[name]
    if name == "os-ken":
        os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")
    _patch_eventlet()
    try:
        importlib.import_module(package)
    except ImportError:
        raise FrameworkMissing(
            f"southbound {name} is not installed; install it with: {_INSTALL[name]}"
        ) from None
    handler = _module(package, "controller.handler")
    app_manager = _module(package, "base.app_manager")
    fw.__dict__.update(
        name=name,
        package=package,
        cfg=_module(package, "cfg"),
        app_manager=app_manager,
        # The base class of an app: RyuApp in Ryu, OSKenApp in os-ken.
        app_base=getattr(app_manager, "OSKenApp", None) or app_manager.RyuApp,
        ofp_event=_module(package, "controller.ofp_event"),
        set_ev_cls=handler.set_ev_cls,
        CONFIG_DISPATCHER=handler.CONFIG_DISPATCHER,
        MAIN_DISPATCHER=handler.MAIN_DISPATCHER,
        DEAD_DISPATCHER=handler.DEAD_DISPATCHER,
        hub=_module(package, "lib.hub"),
        ofp=_module(package, "ofproto.ofproto_v1_3"),
        parser=_module(package, "ofproto.ofproto_v1_3_parser"),
        controller_module=_module(package, "controller.controller"),
        ofp_handler=f"{package}.controller.ofp_handler",
    )
    return fw
