"""zfit's Minuit with the loss evaluated by one traced graph of the parameter vector.

An adapter isolated here: it replaces one private hook of zfit's ``LossEval`` (zfit
0.28); tests/fit/test_tailfit.py fails loudly if the hook disappears. Importing this
module imports zfit and TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from bkg.fit._zfit import load_zfit

# zfit first, guarded (bkg/fit/_zfit.py); before TensorFlow: it silences TF's start-up lines
load_zfit()
# isort: off
import zfit  # noqa: E402
import tensorflow as tf  # noqa: E402
from zfit.minimizers.evaluation import LossEval  # noqa: E402

# isort: on

__all__ = ["CompiledMinuit"]

#: zfit's evaluator has the one hook replaced here (zfit 0.28); without it zfit's own path runs
_HOOK = "_assign_and_value"
_HAS_HOOK = callable(getattr(LossEval, _HOOK, None))


def _fast_call(concrete: Any) -> Callable[[Any], float]:
    """``values -> float(concrete(values))`` for a concrete function of one float64 vector.

    ``ConcreteFunction.__call__`` binds and checks its arguments in Python (about 0.2 ms
    a call); with no gradient tape it then runs ``inference_fn.call_preflattened`` on
    the inputs plus the captured tensors, which is what is called here directly (about
    0.05 ms). A float, not a tensor, goes back to zfit's evaluator and Minuit.
    """
    inference = getattr(concrete, "inference_fn", None)
    captures = list(getattr(concrete, "captured_inputs", ()))
    if inference is None or not callable(getattr(inference, "call_preflattened", None)):

        def public(values: Any) -> float:
            return float(concrete(tf.convert_to_tensor(values, dtype=tf.float64)))

        return public

    def direct(values: Any) -> float:
        x = tf.convert_to_tensor(values, dtype=tf.float64)
        return float(inference.call_preflattened([x, *captures]))

    return direct


class CompiledMinuit(zfit.minimize.Minuit):
    """zfit Minuit that evaluates registered losses with a compiled graph (same values).

    zfit's loss evaluator spends about 2-3 ms per call on Python bookkeeping (parameter
    assignment through its own tf.function, argument caching, retrace checks) around a
    graph that takes a fraction of that; a fit with Minuit's numerical gradient makes
    hundreds of calls. Here the assignment and the loss are one concrete TensorFlow
    function of the parameter vector, traced once per (loss, parameter order): the same
    graph operations, so the same values and the same Minuit steps; the strategy on
    NaN, the convergence criterion, the FitResult and Hesse stay zfit's.

    Example::

        minimizer = CompiledMinuit(gradient=True, tol=1e-3)
        minimizer.compile_loss(loss, nll)  # nll(): the loss value from the parameters' variables
        result = minimizer.minimize(loss)
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._graphs: dict[int, tuple[Any, Callable[[], Any]]] = {}
        self._compiled: dict[tuple[int, tuple[str, ...]], Callable[[Any], Any]] = {}

    def compile_loss(self, loss: Any, nll: Callable[[], Any]) -> None:
        """Evaluate ``loss`` as ``nll()`` after assigning the parameters, in one graph.

        Args:
            loss: the zfit loss passed to :meth:`minimize` (kept alive here).
            nll: TensorFlow function of no argument returning the same value as
                ``loss.value()`` from the current values of the loss's parameters.
        """
        self._graphs[id(loss)] = (loss, nll)

    def _value_function(self, loss: Any, params: Sequence[Any]) -> Callable[[Any], Any]:
        key = (id(loss), tuple(p.name for p in params))
        if key not in self._compiled:
            nll = self._graphs[id(loss)][1]
            plist = list(params)

            def assign_and_value(values: Any) -> Any:
                for param, value in zip(plist, tf.unstack(values), strict=True):
                    param.assign(value, read_value=False)
                return nll()

            concrete = tf.function(assign_and_value, autograph=False).get_concrete_function(
                tf.TensorSpec([len(plist)], tf.float64)
            )

            self._compiled[key] = _fast_call(concrete)
        return self._compiled[key]

    def create_evaluator(
        self,
        loss: Any = None,
        params: Any = None,
        numpy_converter: Callable[..., Any] | None = None,
        strategy: Any = None,
    ) -> LossEval:
        """zfit's evaluator; for a registered loss its value runs the compiled graph."""
        evaluator = super().create_evaluator(loss, params, numpy_converter, strategy)
        if _HAS_HOOK and id(evaluator.loss) in self._graphs:
            setattr(evaluator, _HOOK, self._value_function(evaluator.loss, evaluator.params))
        return evaluator
