"""prove_convex: the proof it states, and every way it refuses one.

A proof's ``rule`` and ``statement`` are what the user reads (``ConvexityReport.explanation``,
the JSON report); they are checked here word for word against the composition rules they state.
Every problem that must not be proven is shown non-convex independently, by a negative eigenvalue
of the dense float64 ``torch.func.hessian`` of a hand-written loss; the refusal must then name
the right reason. The tolerance boundary (a defect of exactly ``AFFINE_DEFECT`` is accepted) is
pinned with a stubbed defect, for each kind of model: built in, graph-proven, user-declared.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from torch import nn

import losslab.convexity.structure as structure
import losslab.models.torch_module as torch_module
from losslab import LosslabError, Problem, check_convexity
from losslab.convexity.structure import Proof, prove_convex
from losslab.models import Linear, Module, TwoLayer
from losslab.models.base import Model
from losslab.tolerances import AFFINE_DEFECT

from references import dense_eigenvalues, module_outputs

DT = torch.float64
G = torch.Generator().manual_seed(0)
X = torch.randn(12, 2, generator=G, dtype=DT)
Y = torch.randn(12, generator=G, dtype=DT)
LABELS = (torch.rand(12, generator=G, dtype=DT) > 0.5).to(DT)
RULE_AFFINE = "affine model ∘ loss convex in the output"
RULE_LOGISTIC = "logistic regression: cross-entropy of a sigmoid of an affine logit"
MSE = "mse is convex in the model output ((f − y)² is a convex function of f); an affine map composed with a convex function is convex"


class Gate(nn.Module):
    """a(x)·s + b(x)/t: the graph proves it affine in {a.weight, a.bias}, in {b.weight, b.bias} and in {s}."""

    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(2, 2).double(), nn.Linear(2, 2).double()
        self.s, self.t = nn.Parameter(torch.tensor(1.3, dtype=DT)), nn.Parameter(torch.tensor(0.7, dtype=DT))

    def forward(self, x):
        return self.a(x) * self.s + self.b(x) / self.t


class Untraced(nn.Module):
    """An affine module torch.fx cannot trace (a branch on a tensor value): affine only by the user's declaration."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1).double()

    def forward(self, x):
        return self.lin(x)[:, 0] if bool(x.abs().sum() >= 0) else -self.lin(x)[:, 0]


def tanh_net() -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)).double()


def gate_problem() -> Problem:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1)
        model = Module(Gate())
    return Problem(model, X, torch.randn(12, 2, generator=torch.Generator().manual_seed(2), dtype=DT))


def statement_cases():
    gate = gate_problem()
    return {
        "built-in model, l2 penalty": (
            Problem(Linear(2), X, Y, l2=0.5), RULE_AFFINE,
            "Linear(d_in=2) is affine in {w, c} by construction (the logit w·x + c is linear in (w, c)); " + MSE
            + "; the penalty 0.5·‖θ‖² is convex and sums of convex functions are convex",
        ),
        "logistic regression": (
            Problem(Linear(2, "sigmoid"), X, LABELS, loss="bce"), RULE_LOGISTIC,
            "Linear(d_in=2, output='sigmoid') is affine in {w, c} by construction (the logit w·x + c is linear in (w, c)); "
            "the cross-entropy of σ(z), −y·log σ(z) − (1−y)·log(1−σ(z)) = softplus(z) − y·z, is convex in the logit z; "
            "composed with the affine logit it is convex",
        ),
        "two groups, two fixed": (
            Problem(TwoLayer(2, 3, "tanh", out_bias=True), X, Y).restrict(["v", "c"]), RULE_AFFINE,
            "TwoLayer(d_in=2, width=3, activation=tanh, out_bias) is affine in {v, c} with {W, b} fixed by construction "
            "(f = v·σ(Wx + b) (+ c) is linear in v (and c) with W, b fixed); " + MSE,
        ),
        "module, graph-proven, only the set that holds s": (
            gate.restrict(["s"]), RULE_AFFINE,
            f"{gate.model.describe()} is affine in {{s}} with {{t, a.weight, a.bias, b.weight, b.bias}} fixed "
            "(traced graph (torch.fx): the output depends on {s} only through linear operations); " + MSE,
        ),
    }


@pytest.mark.parametrize("name", ["built-in model, l2 penalty", "logistic regression", "two groups, two fixed",
                                  "module, graph-proven, only the set that holds s"])
def test_the_proof_states_its_rule_and_reasons_word_for_word(name):
    problem, rule, statement = statement_cases()[name]
    proof = prove_convex(problem)
    assert proof.rule == rule
    assert proof.statement == statement
    assert proof.groups == problem.groups
    assert 0 <= proof.declaration_check <= 1e-12  # affine: zero to float64 rounding
    assert proof.to_dict() == {"rule": rule, "statement": statement, "groups": list(problem.groups),
                               "declaration_check": proof.declaration_check}
    assert json.loads(json.dumps(proof.to_dict())) == proof.to_dict()


def test_the_report_carries_the_proof_as_json():
    problem = Problem(Linear(2), X, Y)
    report = check_convexity(problem, budget=50, train_steps=0, by_group=False)
    d = json.loads(json.dumps(report.to_dict()))["proof"]
    assert d == {"rule": RULE_AFFINE, "statement": prove_convex(problem).statement, "groups": ["w", "c"],
                 "declaration_check": report.proof.declaration_check}


# ---- problems that must not be proven ------------------------------------------------------------

def net_theta(net: nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in net.parameters()])


class WronglyDeclared(Model):
    """tanh(x·w), declared affine in w by mistake (a bug in a model's formula declaration)."""

    link = None

    def __init__(self):
        self.d_in, self.shapes, self.affine_sets = 2, {"w": (2,)}, (frozenset({"w"}),)

    def init(self, *, seed: int = 0, dtype: torch.dtype = DT):
        return {"w": torch.tensor([1.5, -1.0], dtype=dtype)}

    def logit(self, params, X):
        return torch.tanh(X @ params["w"])


def test_a_wrong_declaration_of_a_built_in_model_is_reported_as_a_bug():
    problem = Problem(WronglyDeclared(), X, Y)
    loss = lambda w: ((torch.tanh(X @ w) - Y) ** 2).mean()
    assert min(float(dense_eigenvalues(loss, w)[0]) for w in problem.init(0) * torch.tensor([[1.0], [3.0]], dtype=DT)) < -1e-3
    with pytest.raises(RuntimeError, match=r"^WronglyDeclared declares its logit affine in \{w\}, but it is not \(relative defect "
                       r"[0-9.e+-]+ on the data\): the model's affine_sets declaration is wrong — please report this bug$"):
        prove_convex(problem)


@pytest.fixture
def graph_proves_everything(monkeypatch):
    """A traced-graph analysis that wrongly proves every group affine (as a custom op or a bug in it would)."""
    monkeypatch.setattr(torch_module, "prove_affine_sets", lambda root, gm, out, groups: ((frozenset(groups),), ""))


@pytest.mark.parametrize("declared", [None, [["0.weight", "0.bias", "2.weight", "2.bias"]]], ids=["proven", "proven and declared"])
def test_a_wrong_graph_proof_gives_no_proof_and_no_error(graph_proves_everything, declared):
    net = tanh_net()
    model = Module(net, affine_sets=declared)
    assert model.proven_affine_sets == (frozenset(model.groups),)
    problem = Problem(model, X, Y)
    out = module_outputs(net, X)  # mean((net(x) − y)²) over a flat θ in the module's parameter order
    assert float(dense_eigenvalues(lambda t: ((out(t)[:, 0] - Y) ** 2).mean(), 3 * net_theta(net))[0]) < -1e-3  # not convex
    assert prove_convex(problem) is None  # the float64 check overrules the graph; the search decides
    assert check_convexity(problem, budget=300, train_steps=0, by_group=False).verdict != "convex"


def test_a_wrong_user_declaration_is_an_error_naming_the_set_to_remove():
    net = tanh_net()
    problem = Problem(Module(net, affine_sets=[["0.weight", "0.bias"]]), X, Y).restrict(["0.weight", "0.bias"])
    with pytest.raises(LosslabError, match=r"^expected the declared affine_sets to hold, got the output nonlinear in "
                       r"\{0\.weight, 0\.bias\} \(relative defect [0-9.e+-]+ on the data\); remove \['0\.bias', '0\.weight'\] "
                       r"from Module\(\.\.\., affine_sets=\.\.\.\): the output is not affine in it$"):
        prove_convex(problem)


# ---- the tolerance boundary: a defect of exactly AFFINE_DEFECT is accepted ------------------------

def boundary_problems():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(4)
        proven = Module(nn.Linear(2, 1).double())
        declared = Module(Untraced(), affine_sets=[["lin.weight", "lin.bias"]], d_in=2)
    assert proven.proven_affine_sets and not declared.proven_affine_sets and declared.declared_affine_sets
    return {"built in": (Problem(Linear(2), X, Y), RuntimeError), "graph-proven": (Problem(proven, X, Y), None),
            "declared by the user": (Problem(declared, X, Y), LosslabError)}


@pytest.mark.parametrize("kind", ["built in", "graph-proven", "declared by the user"])
def test_a_defect_at_the_tolerance_is_accepted_and_any_larger_one_refused(monkeypatch, kind):
    problem, refusal = boundary_problems()[kind]
    for defect, accepted in ((AFFINE_DEFECT, True), (math.nextafter(AFFINE_DEFECT, 1.0), False), (math.nan, False)):
        monkeypatch.setattr(structure, "affine_defect", lambda problem, d=defect: d)
        if accepted:
            proof = prove_convex(problem)
            assert isinstance(proof, Proof) and proof.declaration_check == AFFINE_DEFECT
        elif refusal is None:
            assert prove_convex(problem) is None
        else:
            with pytest.raises(refusal, match="relative defect"):
                prove_convex(problem)
