"""Element-wise activations, per element in basic operations.

Transcendentals (exp, log, tanh, erf, ...) count as one ``root`` each and comparisons as
one ``sub``, following Li et al.; the decomposition of each op is written beside it.
"""

from __future__ import annotations

from .helpers import elementwise
from .registry import BasicOps, register

B = BasicOps

ACTIVATIONS: dict[str, BasicOps] = {
    "Relu": B(sub=1),                           # max(0, x): one comparison
    "LeakyRelu": B(sub=1, mul=1),               # compare, alpha*x
    "PRelu": B(sub=1, mul=1),                   # compare, slope*x
    "ThresholdedRelu": B(sub=1),                # compare with alpha
    "Sigmoid": B(sub=1, add=1, div=1, root=1),  # 1/(1+exp(0-x)), Li et al. eq. 2
    "HardSigmoid": B(mul=1, add=1, sub=2),      # clamp(alpha*x+beta, 0, 1)
    "HardSwish": B(mul=2, add=1, sub=2),        # x*hardsigmoid(x)
    "Tanh": B(root=1),                          # one transcendental
    "Erf": B(root=1),                           # one transcendental
    "Elu": B(sub=2, mul=1, root=1),             # x<0: alpha*(exp(x)-1)
    "Celu": B(sub=2, mul=1, div=1, root=1),     # alpha*(exp(x/alpha)-1)
    "Selu": B(sub=2, mul=2, root=1),            # gamma*(alpha*exp(x)-alpha) or gamma*x
    "Softplus": B(add=1, root=2),               # log(1+exp(x))
    "Softsign": B(sub=1, add=1, div=1),         # x/(1+|x|)
    "Mish": B(add=1, mul=1, root=3),            # x*tanh(log(1+exp(x)))
    "Clip": B(sub=2),                           # two comparisons
    "Shrink": B(sub=2, add=1),                  # two compares with -+lambd, then x -+ bias
}

for _op, _per_element in ACTIVATIONS.items():
    register(_op, backward="prelu" if _op == "PRelu" else "unary")(elementwise(_per_element))


def _gelu(f):
    # erf form: 0.5*x*(1+erf(x/sqrt 2)); tanh form: Li et al. eq. 3 (sub, add, div, root, 2 mul)
    if f.attr("approximate", "none") == "tanh":
        per = B(sub=1, add=1, div=1, root=1, mul=2)
    else:
        per = B(div=1, root=1, add=1, mul=2)
    return elementwise(per)(f)


register("Gelu", backward="gelu")(_gelu)


@register("Swish", backward="unary")
def _swish(f):
    # x*sigmoid(alpha*x): sigmoid as eq. 2 (sub, add, div, root), x*s, and alpha*x if alpha != 1
    alpha_mul = int(float(f.attr("alpha", 1.0)) != 1.0)
    return elementwise(B(sub=1, add=1, div=1, root=1, mul=1 + alpha_mul))(f)
