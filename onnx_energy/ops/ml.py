"""Classical models (``ai.onnx.ml``), as skl2onnx, onnxmltools and similar exporters write them.

Per sample (N = the rows of X (N, F); a 1-D X is one sample):

- **tree ensembles** (TreeEnsemble, TreeEnsembleClassifier, TreeEnsembleRegressor): one
  comparison per level of each tree, the tree's depth read from its node attributes (the
  longest root-to-leaf path of branch nodes; a set-membership branch counts one compare),
  then the aggregation: each reached leaf adds its weights into the targets (weights per
  leaf = leaf weights / leaves, averaged over the ensemble; MIN and MAX compare instead),
  AVERAGE divides each target by the tree count, base values add one per target, and the
  post-transform (below); classifiers pick the label with E − 1 compares (one for a
  binary ensemble);
- **linear models** (LinearClassifier, LinearRegressor): one F-long dot product per class or
  target (+ the intercept), the post-transform, the classifier's label compares;
- **SVMs**: a kernel per support vector — LINEAR an F-long dot product; POLY that, ·γ, + c,
  the power (mul, add, root); RBF F sub, F mul, F − 1 add, ·γ and exp; SIGMOID the dot
  product, ·γ, + c, tanh — then per one-vs-one class pair the weighted sum of both classes'
  kernel values (+ rho) and its vote (compare), Platt's sigmoid per pair with prob_a;
  the regressor: one weighted sum over the support vectors (+ rho); without support vectors
  the classifier is linear;
- Scaler (x − offset)·scale: sub, mul per element; Normalizer per row MAX (F − 1 compares,
  F div), L1 (F |x|, F − 1 add, F div), L2 (F mul, F − 1 add, root, F div); Binarizer and
  Imputer one compare per element;
- post-transforms per output: SOFTMAX (compare, sub, exp, add, div), LOGISTIC (sigmoid),
  SOFTMAX_ZERO (as SOFTMAX), PROBIT (one transcendental).

OneHotEncoder, LabelEncoder, CategoryMapper (lookups), ArrayFeatureExtractor (a gather),
FeatureVectorizer (a concat), ZipMap, DictVectorizer and CastMap (maps) only move data.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .helpers import ShapeOut, bops_cost, dot_cost
from .registry import BasicOps, Cost, NodeFacts, register, register_movement, shape_rule

B = BasicOps
ML = "ai.onnx.ml"
SIGMOID = B(sub=1, add=1, div=1, root=1)
#: TreeEnsemble (ai.onnx.ml 5) spells post_transform and aggregate_function as ints.
POST_TRANSFORM_CODES = ("NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT")
AGGREGATE_CODES = ("AVERAGE", "SUM", "MIN", "MAX")
POST_TRANSFORM = {"NONE": B(), "SOFTMAX": B(sub=2, root=1, add=1, div=1),
                  "SOFTMAX_ZERO": B(sub=2, root=1, add=1, div=1), "LOGISTIC": SIGMOID,
                  "PROBIT": B(root=1)}


def _samples(f: NodeFacts) -> tuple[int, int]:
    """(N, F) of input 0: (N, F), or one sample of F for a 1-D X."""
    x = f.shape(0)
    if len(x) == 1:
        return 1, x[0]
    return x[0], math.prod(x[1:])


def _named(value: object, codes: tuple[str, ...], default: str) -> str:
    if isinstance(value, int):
        return codes[value] if 0 <= value < len(codes) else default
    return str(value) if value is not None else default


def _post(f: NodeFacts, outputs: int) -> BasicOps:
    name = _named(f.attr("post_transform"), POST_TRANSFORM_CODES, "NONE")
    return POST_TRANSFORM.get(name, B(root=1)) * outputs


def _label(classes: int) -> BasicOps:
    return B(sub=max(classes - 1, 1))


# ------------------------------------------------------------------------------ trees


def tree_depths(roots: Sequence[int], true_ids: Sequence[int], false_ids: Sequence[int],
                true_leaf: Sequence[bool], false_leaf: Sequence[bool]) -> list[int]:
    """Depth (branch nodes on the longest root-to-leaf path) of each tree, the branch nodes
    indexed globally: node i's children are true_ids[i] / false_ids[i] unless flagged leaves."""
    memo: dict[int, int] = {}
    n = len(true_ids)

    def depth(root: int) -> int:
        stack = [(root, False)]
        while stack:
            node, done = stack.pop()
            if node in memo:
                continue
            kids = [c for c, leaf in ((true_ids[node], true_leaf[node]),
                                      (false_ids[node], false_leaf[node]))
                    if not leaf and 0 <= c < n and c != node]
            if done:
                memo[node] = 1 + max((memo.get(c, 0) for c in kids), default=0)
                continue
            stack.append((node, True))
            stack.extend((c, False) for c in kids if c not in memo)
        return memo[root]

    return [depth(r) if 0 <= r < n else 0 for r in roots]


def _legacy_trees(f: NodeFacts) -> tuple[list[int], int]:
    """(depth per tree, leaves) of TreeEnsembleClassifier/Regressor (nodes_treeids, ...)."""
    tree_ids = list(f.attr("nodes_treeids", []))
    node_ids = list(f.attr("nodes_nodeids", []))
    modes = [str(m) for m in f.attr("nodes_modes", [])]
    true_ids = list(f.attr("nodes_truenodeids", []))
    false_ids = list(f.attr("nodes_falsenodeids", []))
    if not (len(tree_ids) == len(node_ids) == len(modes) == len(true_ids) == len(false_ids)):
        raise ValueError("the nodes_* attributes differ in length")
    index = {(t, n): i for i, (t, n) in enumerate(zip(tree_ids, node_ids, strict=True))}
    leaf = [m == "LEAF" for m in modes]
    t_idx = [index.get((t, c), -1) for t, c in zip(tree_ids, true_ids, strict=True)]
    f_idx = [index.get((t, c), -1) for t, c in zip(tree_ids, false_ids, strict=True)]
    t_leaf = [i < 0 or leaf[i] for i in t_idx]
    f_leaf = [i < 0 or leaf[i] for i in f_idx]
    roots: dict[int, int] = {}
    children = {c for i, c in enumerate(t_idx + f_idx) if not leaf[i % len(leaf)]}
    for i, t in enumerate(tree_ids):
        if i not in children and not leaf[i] and t not in roots:
            roots[t] = i
    depths = tree_depths(list(roots.values()), t_idx, f_idx, t_leaf, f_leaf)
    trees = len(set(tree_ids))
    depths += [0] * (trees - len(depths))  # trees that are a single leaf
    return depths, sum(leaf)


def _tree_cost(f: NodeFacts, depths: list[int], leaves: int, weights: int, targets: int,
               classifier: bool) -> Cost:
    n, _ = _samples(f)
    trees = len(depths)
    per_leaf = math.ceil(weights / leaves) if leaves else 1
    aggregate = _named(f.attr("aggregate_function"), AGGREGATE_CODES, "SUM")
    combine = B(sub=trees * per_leaf) if aggregate in ("MIN", "MAX") else B(add=trees * per_leaf)
    per_sample = B(sub=sum(depths)) + combine
    if aggregate == "AVERAGE":
        per_sample = per_sample + B(div=targets)
    if f.attr("base_values") or f.attr("base_values_as_tensor") is not None:
        per_sample = per_sample + B(add=targets)
    per_sample = per_sample + _post(f, targets)
    if classifier:
        per_sample = per_sample + _label(targets)
    return bops_cost(per_sample * n)


def _classes(f: NodeFacts) -> int:
    labels = f.attr("classlabels_int64s") or f.attr("classlabels_strings") or \
        f.attr("classlabels_ints") or []
    return len(labels)


@register("TreeEnsembleClassifier", domain=ML)
def tree_ensemble_classifier(f: NodeFacts) -> Cost:
    depths, leaves = _legacy_trees(f)
    classes = _classes(f) or len(set(f.attr("class_ids", []))) or 1
    weights = len(f.attr("class_ids", []))
    return _tree_cost(f, depths, leaves, weights, classes, classifier=True)


@register("TreeEnsembleRegressor", domain=ML)
def tree_ensemble_regressor(f: NodeFacts) -> Cost:
    depths, leaves = _legacy_trees(f)
    targets = int(f.attr("n_targets", 1))
    weights = len(f.attr("target_ids", []))
    return _tree_cost(f, depths, leaves, weights, targets, classifier=False)


@register("TreeEnsemble", domain=ML)
def tree_ensemble(f: NodeFacts) -> Cost:
    """TreeEnsemble (ai.onnx.ml 5): tree_roots index the nodes_* lists; nodes_trueleafs /
    nodes_falseleafs flag the children that are leaves (indices into the leaf_* lists)."""
    roots = [int(r) for r in f.attr("tree_roots", [])]
    true_ids = [int(v) for v in f.attr("nodes_truenodeids", [])]
    false_ids = [int(v) for v in f.attr("nodes_falsenodeids", [])]
    true_leaf = [bool(v) for v in f.attr("nodes_trueleafs", [])]
    false_leaf = [bool(v) for v in f.attr("nodes_falseleafs", [])]
    if not (len(true_ids) == len(false_ids) == len(true_leaf) == len(false_leaf)):
        raise ValueError("the nodes_* attributes differ in length")
    depths = tree_depths(roots, true_ids, false_ids, true_leaf, false_leaf)
    weights = len(f.attr("leaf_targetids", []))
    leaves = sum(true_leaf) + sum(false_leaf)
    return _tree_cost(f, depths, leaves, weights, int(f.attr("n_targets", 1)),
                      classifier=False)


# ------------------------------------------------------------------------ linear, SVM


@register("LinearClassifier", domain=ML)
def linear_classifier(f: NodeFacts) -> Cost:
    n, feats = _samples(f)
    coefficients = len(f.attr("coefficients", []))
    classes = coefficients // feats if feats else 0
    outputs = n * classes
    cost = dot_cost(outputs * feats, outputs, outputs if f.attr("intercepts") else 0)
    return cost + bops_cost(_post(f, outputs) + _label(max(_classes(f), classes)) * n)


@register("LinearRegressor", domain=ML)
def linear_regressor(f: NodeFacts) -> Cost:
    n, feats = _samples(f)
    targets = int(f.attr("targets", 1))
    outputs = n * targets
    cost = dot_cost(outputs * feats, outputs, outputs if f.attr("intercepts") else 0)
    return cost + bops_cost(_post(f, outputs))


def _kernel(kind: str, feats: int) -> Cost:
    """One kernel evaluation between a sample and a support vector."""
    dot = dot_cost(feats, 1, 0)
    if kind == "POLY":
        return dot + bops_cost(B(mul=2, add=1, root=1))
    if kind == "RBF":
        return bops_cost(B(sub=feats, mul=feats + 1, add=feats - 1, root=1))
    if kind == "SIGMOID":
        return dot + bops_cost(B(mul=1, add=1, root=1))
    return dot


def _scaled(cost: Cost, k: int) -> Cost:
    return Cost(cost.macs * k, cost.flops * k, cost.bias * k, cost.bops * k)


@register("SVMClassifier", domain=ML)
def svm_classifier(f: NodeFacts) -> Cost:
    n, feats = _samples(f)
    per_class = [int(v) for v in f.attr("vectors_per_class", [])]
    svs = len(f.attr("support_vectors", [])) // feats if feats else 0
    classes = _classes(f) or len(per_class)
    if not svs:  # linear mode: coefficients (classes, F)
        rows = len(f.attr("coefficients", [])) // feats if feats else 0
        outputs = n * rows
        return dot_cost(outputs * feats, outputs, outputs) + bops_cost(
            _post(f, outputs) + _label(classes) * n)
    kernel = _scaled(_kernel(str(f.attr("kernel_type", "LINEAR")), feats), svs)
    pairs = [(i, j) for i in range(len(per_class)) for j in range(i + 1, len(per_class))]
    votes = Cost()
    for i, j in pairs:
        length = per_class[i] + per_class[j]
        votes = votes + dot_cost(length, 1, 1) + bops_cost(B(sub=1))
    if f.attr("prob_a"):
        votes = votes + bops_cost((SIGMOID + B(mul=1, add=1)) * len(pairs))
    per_sample = kernel + votes + bops_cost(_label(classes) + _post(f, classes))
    return _scaled(per_sample, n)


@register("SVMRegressor", domain=ML)
def svm_regressor(f: NodeFacts) -> Cost:
    n, feats = _samples(f)
    svs = int(f.attr("n_supports", 0)) or (len(f.attr("support_vectors", [])) // feats
                                           if feats else 0)
    if not svs:
        return dot_cost(n * feats, n, n) + bops_cost(_post(f, n))
    kernel = _scaled(_kernel(str(f.attr("kernel_type", "LINEAR")), feats), svs)
    per_sample = kernel + dot_cost(svs, 1, 1) + bops_cost(
        B(sub=int(f.attr("one_class", 0))) + _post(f, 1))
    return _scaled(per_sample, n)


# ----------------------------------------------------------------------- preprocessing


@register("Scaler", domain=ML)
def scaler(f: NodeFacts) -> Cost:
    return bops_cost(B(sub=1, mul=1) * f.numel(0))


@register("Normalizer", domain=ML)
def normalizer(f: NodeFacts) -> Cost:
    n, feats = _samples(f)
    norm = str(f.attr("norm", "MAX"))
    if norm == "L1":
        per = B(sub=feats, add=feats - 1, div=feats)
    elif norm == "L2":
        per = B(mul=feats, add=feats - 1, root=1, div=feats)
    else:
        per = B(sub=feats - 1, div=feats)
    return bops_cost(per * n)


@register("Binarizer", "Imputer", domain=ML)
def compare_each(f: NodeFacts) -> Cost:
    """One compare per element (with the threshold, or with the missing-value marker)."""
    return bops_cost(B(sub=f.numel(0)))

register_movement("OneHotEncoder", "LabelEncoder", "CategoryMapper", "ArrayFeatureExtractor",
                  "FeatureVectorizer", "ZipMap", "DictVectorizer", "CastMap", domain=ML)


# ------------------------------------------------------------- output shapes ONNX lacks


@shape_rule("Scaler", "Normalizer", "Imputer", "Binarizer", domain=ML)
def _elementwise(f: NodeFacts) -> list[ShapeOut | None]:
    """Same shape; Scaler and Normalizer output float."""
    float_out = f.node.op_type in ("Scaler", "Normalizer")
    return [(f.dims(0), "float32" if float_out else f.dtype(0))]


def _rows_of(f: NodeFacts) -> Any:
    x = f.dims(0)
    return None if x is None else (1 if len(x) == 1 else x[0])


@shape_rule("TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier", domain=ML)
def _classifier(f: NodeFacts) -> list[ShapeOut | None]:
    n = _rows_of(f)
    if n is None:
        return [None]
    label = "string" if f.attr("classlabels_strings") else "int64"
    classes = _classes(f)
    if not classes and f.node.op_type == "TreeEnsembleClassifier":
        classes = len(set(f.attr("class_ids", [])))
    if classes == 2 and f.node.op_type != "TreeEnsembleClassifier":
        scores: int | None = 2 if f.node.op_type == "SVMClassifier" else None
    else:
        scores = classes or None
    if f.node.op_type == "LinearClassifier":
        feats = (f.dims(0) or (None,))[-1]
        coefficients = len(f.attr("coefficients", []))
        scores = coefficients // feats if isinstance(feats, int) and feats else None
    return [((n,), label), ((n, scores), "float32")]


@shape_rule("TreeEnsembleRegressor", "TreeEnsemble", "LinearRegressor", "SVMRegressor",
            domain=ML)
def _regressor(f: NodeFacts) -> list[ShapeOut | None]:
    n = _rows_of(f)
    if n is None:
        return [None]
    targets = int(f.attr("n_targets", 0) or f.attr("targets", 1))
    return [((n, targets), f.dtype(0) if f.node.op_type == "TreeEnsemble" else "float32")]


@shape_rule("FeatureVectorizer", domain=ML)
def _feature_vectorizer(f: NodeFacts) -> list[ShapeOut | None]:
    dims = [int(d) for d in f.attr("inputdimensions", [])]
    n = _rows_of(f)
    return [None if n is None or not dims else ((n, sum(dims)), "float32")]


@shape_rule("OneHotEncoder", domain=ML)
def _one_hot_encoder(f: NodeFacts) -> list[ShapeOut | None]:
    x = f.dims(0)
    cats = len(f.attr("cats_int64s") or f.attr("cats_strings") or [])
    return [None if x is None else ((*x, cats), "float32")]


@shape_rule("ArrayFeatureExtractor", domain=ML)
def _array_feature_extractor(f: NodeFacts) -> list[ShapeOut | None]:
    x, idx = f.dims(0), f.dims(1)
    if x is None or idx is None:
        return [None]
    count = math.prod(d for d in idx if isinstance(d, int)) if all(
        isinstance(d, int) for d in idx) else None
    return [((*x[:-1], count), f.dtype(0))]

