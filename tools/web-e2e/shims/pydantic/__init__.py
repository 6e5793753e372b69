"""Offline stand-in for the few pydantic names used by fractal_tasks_mock (e2e tests only)."""
import functools
import inspect
import typing

_MISSING = object()


class _FieldInfo:
    def __init__(self, default=_MISSING, default_factory=None, **kw):
        self.default = default
        self.default_factory = default_factory

    def get(self):
        if self.default_factory is not None:
            return self.default_factory()
        return None if self.default is _MISSING else self.default


def Field(default=_MISSING, default_factory=None, **kw):
    return _FieldInfo(default, default_factory)


class BaseModel:
    def __init__(self, **kw):
        hints = {}
        for c in reversed(type(self).__mro__):
            hints.update(getattr(c, "__annotations__", {}))
        for name in hints:
            if name in kw:
                v = kw.pop(name)
            else:
                d = getattr(type(self), name, _MISSING)
                if isinstance(d, _FieldInfo):
                    v = d.get()
                elif d is _MISSING:
                    raise ValueError(f"missing field {name}")
                else:
                    v = d
            setattr(self, name, v)
        if kw:
            raise ValueError(f"extra fields {list(kw)}")

    def model_dump(self):
        return dict(vars(self))


def validate_call(fn):
    sig = inspect.signature(fn)
    try:
        hints = typing.get_type_hints(fn)
    except Exception:
        hints = {}

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        for k, v in list(kwargs.items()):
            if k not in sig.parameters:
                raise ValueError(f"Unexpected keyword argument {k}")
            t = hints.get(k)
            if isinstance(t, type) and issubclass(t, BaseModel) and isinstance(v, dict):
                kwargs[k] = t(**v)
        return fn(*args, **kwargs)

    return wrapper
