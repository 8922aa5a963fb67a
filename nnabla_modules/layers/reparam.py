"""Weight reparameterizations: ``PF.spectral_norm`` and ``PF.weight_normalization``.

PF applies them to another layer's weight through that layer's ``apply_w``.
Each class here is both:

* a wrapper around a layer module, the natural form:
  ``nm.SpectralNorm(nm.Conv2d(3, 16, 3))`` computes and names exactly what
  ``PF.convolution(x, 16, (3, 3), apply_w=lambda w: PF.spectral_norm(w))``
  does (``conv/W``, ``conv/spectral-norm/u``, ``conv/b``): the wrapper takes
  the layer's place and name, and the layer gets no level of its own;
* the function on a weight Variable, ``nm.SpectralNorm()(w)``, whose
  parameters live under the module's own prefix.

Plain PF code keeps working too: ``nm.Conv2d(..., apply_w=lambda w:
PF.spectral_norm(w))`` runs PF's function inside the convolution's scope.
"""

import copy
import functools
import weakref

import nnabla.parametric_functions as PF

from ..core._state import state_of
from ..module import Module
from ._adapter import Layer
from ._signatures import Shapes


class _Reparameterization(Layer):
    """Shared by the reparameterizations: a function of a weight, or a wrapper of a layer.

    Args:
        layer (:class:`~nnabla_modules.Layer`): The layer whose weight is
            reparameterized (its PF function must take ``apply_w``; it may be
            wrapped already). The wrapper is called as the layer is and takes
            its place in the names. ``None``: the module is the function
            itself, called on a weight Variable.
    """

    inputs = ("w",)
    own_args = (("layer", None),)
    shapes = Shapes(
        inputs=(("w", "(*dims,)"),),
        outputs=(("output", "(*dims,)"),),
        note="Wrapping a ``layer``, it takes and returns what that layer does.",
    )
    input_sizes = ()

    def _configure(self, config):
        layer = config["layer"]
        if layer is None:
            return
        target = _weighted_layer(layer)
        if target is None:
            raise TypeError(
                f"{type(self).__name__}: wraps a layer module whose PF function takes apply_w "
                f"(Affine, Convolution, Deconvolution, Embed, ...), got {layer!r}"
            )
        state = state_of(layer)
        if state.given_name is None and state.parent_module() is self:
            layer.name = ""  # PF's apply_w adds no scope level: the wrapper's name is the layer's
        # The layer's config keeps what its user gave; its PF call gets the wrapper's.
        previous = target._pf_kwargs["apply_w"]
        target._pf_kwargs["apply_w"] = _AppliedToWeight(self, previous)

    def __call__(self, *inputs, test=False, **overrides):
        layer = self.config["layer"]
        if layer is None:
            return Layer.__call__(self, *inputs, test=test, **overrides)
        if test:  # this call infers: the reparameterizations too
            apply_w = _weighted_layer(layer)._pf_kwargs["apply_w"]
            overrides = {"apply_w": functools.partial(apply_w, test=True), **overrides}
        return layer(*inputs, test=test, **overrides)

    def parameter_shapes(self):
        if self.config["layer"] is not None:
            return {}  # created (and counted) by the wrapped layer's call
        return super().parameter_shapes()

    def _check_inputs(self, w, *_):
        dim = self.config["dim"]
        if dim >= w.ndim:  # NNabla would crash on it
            raise self._config_error(f"dim={dim} is not an axis of the weight {w.shape}")

    def _reparameterize(self, w, test):
        self._check_inputs(w)
        return self.pf_function(w, **self._call_kwargs(test, {}))


def _weighted_layer(layer):
    """The layer whose PF function takes ``apply_w``, inside any wrappers; None if there is none."""
    while isinstance(layer, _Reparameterization) and layer.config["layer"] is not None:
        layer = layer.config["layer"]
    if isinstance(layer, Module) and "apply_w" in getattr(type(layer), "_pf_arg_names", ()):
        return layer
    return None


class _AppliedToWeight:
    """The ``apply_w`` a wrapper gives its layer: the layer's own ``apply_w``, then the wrapper's.

    Holds the wrapper weakly: the layer must not keep its parent alive.
    """

    def __init__(self, wrapper, previous):
        self._wrapper = weakref.ref(wrapper)
        self._previous = previous

    def __call__(self, w, test=False):
        if self._previous is not None:
            w = self._previous(w)
        return self._wrapper()._reparameterize(w, test)

    def __deepcopy__(self, memo):
        # A copied layer's apply_w belongs to the copied wrapper, not to the source's.
        wrapper, previous = copy.deepcopy((self._wrapper(), self._previous), memo)
        return _AppliedToWeight(wrapper, previous)

    def __repr__(self):
        wrapper = self._wrapper()
        return f"<apply_w of {type(wrapper).__name__ if wrapper else 'a dead wrapper'}>"


class SpectralNorm(_Reparameterization):
    """Spectral normalization of a layer's weight (or of a weight Variable).

    In inference (``eval()`` or ``test=True``) PF's ``test=True``: the power
    iteration does not update ``u``.

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> conv = nm.SpectralNorm(nm.Conv2d(3, 8, 3), dim=0, name="conv1")
        >>> conv(nn.Variable((2, 3, 6, 6))).shape
        (2, 8, 4, 4)
        >>> list(conv.get_parameters(grad_only=False))
        ['conv/W', 'conv/spectral-norm/u', 'conv/b']

        The same keys as
        ``PF.convolution(x, 8, (3, 3), apply_w=lambda w: PF.spectral_norm(w, dim=0),
        name="conv1")``. As a function of a weight:

        >>> sn = nm.SpectralNorm(dim=1, name="sn")
        >>> sn(nn.Variable((4, 5))).shape
        (4, 5)
        >>> list(sn.get_parameters(grad_only=False))
        ['spectral-norm/u']
    """

    pf_function = PF.spectral_norm
    inference_args = {"test": True}


class WeightNormalization(_Reparameterization):
    """Weight normalization of a layer's weight (or of a weight Variable).

    Example:
        >>> import nnabla as nn
        >>> import nnabla_modules as nm
        >>> fc = nm.WeightNormalization(nm.Affine(6, 4), dim=1, name="fc")
        >>> fc(nn.Variable((2, 6))).shape
        (2, 4)
        >>> list(fc.get_parameters())
        ['affine/W', 'affine/wn/g', 'affine/b']
    """

    pf_function = PF.weight_normalization
