"""The :class:`~nnabla_modules.Module` methods that hand over to other files.

Checkpoints (:mod:`nnabla_modules.checkpoint`), ``summary`` and ``clone`` are
imported at their first use, so ``import nnabla_modules`` stays light and
those files may use the module system without importing ``module.py``.
"""

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, Dict, Mapping, NoReturn, Optional, Sequence, cast

if TYPE_CHECKING:  # for annotations only: the files are imported at first use
    import numpy as np

    from .checkpoint import LoadResult
    from .summary import Summary


class CheckpointMethods:
    """``save_parameters``, ``load_parameters``, ``state_dict``, ``load_state_dict``."""

    __slots__ = ()

    def save_parameters(
        self, path: Any, grad_only: bool = False, extension: Optional[str] = None
    ) -> None:
        """Saves this module's parameters, keys relative to its prefix; see :doc:`/checkpoints`.

        The file is one of NNabla's own formats, readable by
        ``nn.load_parameters`` and NNabla's tools. Keys are relative to the
        module, so the file loads into any instance of the same class, under
        any name, and a submodule's file into another model's submodule.

        Args:
            path (str, os.PathLike or file object): The file: ``.h5`` or
                ``.protobuf``, by its extension. A path is written atomically
                (a temporary file, then renamed): a crash never leaves a
                truncated file at ``path``.
            grad_only (bool): Only parameters with ``need_grad=True``. The
                default ``False`` also saves the batch-norm running
                statistics and frozen weights, which a model needs to predict.
            extension (str, optional): The format, ``".h5"`` or
                ``".protobuf"``; wins over the path's extension, and is
                required for a file object.

        Raises:
            ValueError: An unsupported format, or a file object without
                ``extension``.

        Example:
            >>> import nnabla_modules as nm
            >>> fc = nm.Linear(4, 2, name="fc")
            >>> fc.save_parameters("fc.h5")
            >>> import nnabla_modules.files
            >>> list(nnabla_modules.files.read_parameters("fc.h5"))
            ['affine/W', 'affine/b']
        """
        from . import checkpoint

        return checkpoint.save_parameters(self, path, grad_only=grad_only, extension=extension)

    def load_parameters(
        self, path: Any, strict: bool = True, extension: Optional[str] = None
    ) -> "LoadResult":
        """Loads a checkpoint into this module's Variables in place; see :doc:`/checkpoints`.

        Keys are read relative to the module; keys that carry the module's full
        prefix (a checkpoint of PF code written with ``nn.save_parameters``)
        load too. The values are written into the existing ``nn.Variable``
        objects, so graphs already built and solvers already holding them see
        the loaded values. All or nothing: when anything does not fit, nothing
        is changed.

        Args:
            path (str, os.PathLike or file object): An NNabla parameter file:
                ``.h5``, ``.protobuf``, ``.nntxt``/``.prototxt`` or ``.nnp``.
            strict (bool): ``True``: the file must have exactly the module's
                keys, with the same shapes and compatible dtypes, else
                :class:`~nnabla_modules.checkpoint.CheckpointError` names every
                missing, unexpected and mismatched key. ``False``: loads the
                keys that fit and returns the others. A module that cannot
                know its keys before its first call (no input sizes, PF code
                in its ``__call__``) is checked when that call ends.
            extension (str, optional): The format (``".h5"``, ...); wins over
                the path's extension, and is required for a file object.

        Returns:
            LoadResult: ``missing_keys``, ``unexpected_keys`` and
            ``mismatched_keys`` (all empty after a strict load).

        Raises:
            CheckpointError: The file does not fit the module (``strict=True``,
                or a key that fits twice); nothing was changed.
            nnabla_modules.files.ParameterFileError: Not a readable parameter file.
            FileNotFoundError: No file at ``path``.

        Example:
            >>> import nnabla_modules as nm
            >>> nm.Linear(4, 2, name="trained").save_parameters("fc.h5")
            >>> fresh = nm.Linear(4, 2, name="fresh")
            >>> fresh.load_parameters("fc.h5")
            <LoadResult: all keys matched>
            >>> wider = nm.Linear(4, 3, name="wider")
            >>> wider.load_parameters("fc.h5", strict=False).mismatched_keys
            ['affine/W', 'affine/b']
        """
        from . import checkpoint

        return checkpoint.load_parameters(self, path, strict=strict, extension=extension)

    def state_dict(self, grad_only: bool = False) -> "OrderedDict[str, np.ndarray]":
        """Numpy copies of the parameters, keys relative to the prefix.

        A snapshot: changing the arrays changes nothing in the module, and
        training the module does not change the snapshot.

        Args:
            grad_only (bool): Only parameters with ``need_grad=True``. The
                default ``False`` includes the batch-norm running statistics
                and frozen weights.

        Returns:
            OrderedDict: key relative to the module -> ``numpy.ndarray`` (a
            copy), in :meth:`get_parameters`' order.

        Example:
            >>> import nnabla_modules as nm
            >>> bn = nm.BatchNorm2d(3, name="bn")
            >>> for key, value in bn.state_dict().items():
            ...     print(key, value.shape)
            bn/beta (1, 3, 1, 1)
            bn/gamma (1, 3, 1, 1)
            bn/mean (1, 3, 1, 1)
            bn/var (1, 3, 1, 1)
            >>> list(bn.state_dict(grad_only=True))
            ['bn/beta', 'bn/gamma']
        """
        from . import checkpoint

        return checkpoint.state_dict(self, grad_only=grad_only)

    def load_state_dict(self, state: Mapping[str, Any], strict: bool = True) -> "LoadResult":
        """Loads an in-memory ``{key: array}`` with the rules of :meth:`load_parameters`.

        Values are written into the module's existing Variables, in place, all
        or nothing.

        Args:
            state (mapping): key relative to the module (or with the module's
                full prefix) -> ``numpy.ndarray``, ``nn.Variable`` or
                ``nn.NdArray``; e.g. what :meth:`state_dict` returned.
            strict (bool): ``True``: exactly the module's keys and shapes, else
                :class:`~nnabla_modules.checkpoint.CheckpointError` and nothing
                changes. ``False``: loads what fits and returns the rest.

        Returns:
            LoadResult: What did not fit (all empty after a strict load).

        Raises:
            CheckpointError: The state does not fit the module; nothing was
                changed.

        Example:
            >>> import numpy as np
            >>> import nnabla_modules as nm
            >>> fc = nm.Linear(2, 2, name="fc")
            >>> snapshot = fc.state_dict()
            >>> fc.get_parameters()["affine/W"].d = 0.0
            >>> fc.load_state_dict(snapshot)
            <LoadResult: all keys matched>
            >>> bool(np.array_equal(fc.get_parameters()["affine/W"].d, snapshot["affine/W"]))
            True
        """
        from . import checkpoint

        return checkpoint.load_state_dict(self, state, strict=strict)


class ToolMethods:
    """``summary``, ``clone`` and ``copy.deepcopy``."""

    __slots__ = ()

    def summary(
        self,
        *inputs: Any,
        model_kwargs: Optional[Dict[str, Any]] = None,
        depth: Optional[int] = None,
        columns: Optional[Sequence[str]] = None,
        **unexpected: NoReturn,
    ) -> "Summary":
        """A table of the module tree on ``inputs``; see :func:`nnabla_modules.summary.summary`.

        Args:
            *inputs: ``nn.Variable`` inputs, numpy arrays, or shapes for them.
            model_kwargs (dict): The keyword arguments of the module's call.
            depth (int): The deepest modules shown (0: this one).
            columns (sequence of str): The columns, from ``summary.COLUMNS``.
            **unexpected: Refused, by type checkers too: the module's go in ``model_kwargs``.

        Returns:
            Summary: print it for the table; :doc:`/tools` explains it.
        """
        from . import summary

        return summary.summary(
            cast(Any, self),
            *inputs,
            model_kwargs=model_kwargs,
            depth=depth,
            columns=columns,
            **unexpected,
        )

    def clone(self, name: Optional[str] = None) -> Any:
        """A copy as a new root (``name=`` or automatic) with copied values; see :doc:`/tools`."""
        from . import clone

        return clone.clone(cast(Any, self), name=name)

    def __deepcopy__(self, memo):
        from . import clone

        return clone.deepcopy_module(self, memo)
