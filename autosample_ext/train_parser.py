"""The command line of ``python -m autosample_ext.train``: defaults, the argument parser, the
parsing of list-valued arguments, the checks :class:`RunConfig` does not make (threads, timeouts,
the device, files, spellings argparse cannot check) and the option naming of RunConfig's errors
(each a :class:`CLIError` or argparse's usage error, exit 2). The rules of the settings are
RunConfig's (and those of the configs it builds), stated once there.
Turning parsed arguments into a :class:`RunConfig` and running it is :mod:`autosample_ext.train`."""
from __future__ import annotations

import argparse
import re
from typing import Any, Sequence

import torch

from autosample_ext.cli_common import finite_floats
from autosample_ext.data.readers import FORMATS
from autosample_ext.data.splits import SPLIT_ROUNDINGS
from autosample_ext.models import MODEL_NAMES
from autosample_ext.run import DEFAULT_SEARCH_SPACE, PROTOCOLS, SEARCHES, RunConfig
from autosample_ext.search.records import ALPHA_OBJECTIVES
from autosample_ext.run.protocols import PROTOCOL_SPECS
from autosample_ext.models._init import INIT_SCHEMES
from autosample_ext.models.lightgcn import PROPAGATIONS
from autosample_ext.search.retrain import RETRAIN_INITS
from autosample_ext.training.config import ENGINES, EVAL_PROTOCOLS, OPTIMIZERS
from autosample_ext.distributed.context import DEFAULT_TIMEOUT_S

DEFAULTS = RunConfig()
# One thread unless --threads says otherwise: runs are usually many processes on a shared
# machine, where extra threads oversubscribe the cores (bench/bench_threads.py,
# docs/performance.md).
DEFAULT_THREADS = 1
#: the most --threads: torch takes a C int, and thousands of threads on one process help no one
MAX_THREADS = 4096
#: the longest --dist-timeout: a year (torch's timedelta-based timeouts overflow far above it)
MAX_TIMEOUT_S = 365 * 24 * 3600.0


class CLIError(ValueError):
    """A bad argument: reported as ``error: ...`` with exit status 2."""


def int_list(text: str, what: str) -> tuple[int, ...]:
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise CLIError(f"{what}: expected comma-separated integers such as 0,1,2, got {text!r}")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise CLIError(f"{what}: expected comma-separated integers such as 0,1,2, got {text!r}") from None
    if any(v < 0 for v in values):
        raise CLIError(f"{what}: values must be >= 0, got {text!r}")
    if len(set(values)) != len(values):
        raise CLIError(f"{what}: repeated value in {text!r}")
    return values


def check_seed(value: int, option: str) -> int:
    """A seed: torch's and numpy's generators take 0 <= seed < 2^63."""
    if not 0 <= value < 2**63:
        raise CLIError(f"{option}: must be >= 0 and below 2^63, got {value}")
    return value


def check_more_args(ns: argparse.Namespace, given: dict[str, Any]) -> None:
    """Values argparse cannot check that are no rule of :class:`RunConfig`: --threads,
    --dist-timeout, the range of --seeds and --split-seed."""
    if "threads" in ns and not 1 <= ns.threads <= MAX_THREADS:
        raise CLIError(f"--threads: must be >= 1 and at most {MAX_THREADS}, got {ns.threads}")
    for key in ("seeds", "split_seed"):
        values = given.get(key, ())
        for value in values if isinstance(values, tuple) else (values,):
            check_seed(value, f"--{key.replace('_', '-')}")
    if "dist_timeout" in ns and not 0 < ns.dist_timeout <= MAX_TIMEOUT_S:
        raise CLIError(f"--dist-timeout: must be > 0 and at most {MAX_TIMEOUT_S:g} seconds (a "
                       f"year), got {ns.dist_timeout}")


def name_list(text: str, what: str) -> tuple[str, ...]:
    """Candidates of ``--sampler`` / ``--search-space``: sampler names, schedules
    (``aobpr@5+dns``) and configured candidates (``dns(num_candidates=4|8)``), expanded and in
    canonical spelling; a bad one is a CLIError naming the candidate and the field."""
    from autosample_ext.search.space import expand_space, split_space

    try:
        parts = split_space(text)
    except ValueError as exc:
        raise CLIError(f"{what}: {exc}") from None
    if not text.strip() or any(not n for n in parts):
        raise CLIError(f"{what}: expected comma-separated sampler names, got {text!r}")
    try:
        return expand_space(parts)
    except ValueError as exc:
        message = str(exc)
        if "appears twice" in message:
            message += f" (repeated sampler in {text!r})"
        raise CLIError(f"{what}: {message}") from None


def sampler_opts(texts: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``--sampler-opt`` values (``dns.num_candidates=8``, repeatable) -> ``{sampler: {field:
    value}}``, each converted to its field's type (the ranges are the sampler's options' rules,
    which :class:`RunConfig` applies)."""
    from autosample_ext.samplers.registry import parse_sampler_opt

    out: dict[str, dict[str, Any]] = {}
    for text in texts:
        try:
            name, field, value = parse_sampler_opt(text)
        except ValueError as exc:
            raise CLIError(f"--sampler-opt {text}: {exc}") from None
        if field in out.get(name, {}):
            raise CLIError(f"--sampler-opt {text}: {name}.{field} is given twice "
                           f"(first {out[name][field]!r})")
        out.setdefault(name, {})[field] = value
    return out


#: the RunConfig field an option's parsed value sets, where the names differ
FIELD_OF_DEST: dict[str, str] = {"sampler_opt": "sampler_options",
                                 "no_budget_singles": "budget_singles", "no_progress": "progress"}


def option_of_field(parser: argparse.ArgumentParser) -> dict[str, str]:
    """RunConfig field -> the option that sets it (``epochs`` -> ``--epochs``), from the
    parser's destinations."""
    return {FIELD_OF_DEST.get(a.dest, a.dest): max(a.option_strings, key=len)
            for a in parser._actions if a.option_strings}  # argparse has no public list


_LEADING_FIELD = re.compile(r"([a-z][a-z0-9_]*)(:?) (.*)", re.DOTALL)


def option_message(exc: Exception, options: dict[str, str]) -> str:
    """A :class:`RunConfig` error in the command line's words: the field that leads the
    message becomes its option (``epochs must be >= 1, got 0`` -> ``--epochs: must be >= 1,
    got 0``); a message that names no field stays as it is."""
    text = str(exc)
    match = _LEADING_FIELD.fullmatch(text)
    if match is None or match.group(1) not in options:
        return text
    field, colon, rest = match.groups()
    sep = ": " if colon or rest.startswith("must ") else " "
    return f"{options[field]}{sep}{rest}"


def _protocol_help() -> str:
    return "; ".join(f"{p.name}: {p.summary}" for p in PROTOCOL_SPECS.values())


def check_device(device: str) -> str:
    """Validate ``--device``: cpu, or cuda[:i] with a CUDA build and a visible GPU."""
    import autosample_ext

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise CLIError(f"--device: {device!r} is not a device (use cpu or cuda[:index])") from None
    if dev.type == "cpu":
        return "cpu"
    if dev.type != "cuda":
        raise CLIError(f"--device: {device!r} is not supported (use cpu or cuda[:index])")
    if not autosample_ext.cuda_compiled():
        raise CLIError(f"--device {device}: this build of autosample_ext has no CUDA kernels "
                       "(it was compiled without CUDA; rebuild with AUTOSAMPLE_WITH_CUDA=1)")
    if not torch.cuda.is_available():
        raise CLIError(f"--device {device}: no CUDA device is visible on this machine")
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise CLIError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) visible")
    return str(dev)


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m autosample_ext.train",
        description="Train implicit-feedback recommenders with automatically selected negative "
                    "samplers. Without arguments: AutoSample search over "
                    f"{','.join(DEFAULT_SEARCH_SPACE)} then retraining of the chosen sampler, "
                    "MF, on the embedded default dataset, CPU.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        argument_default=argparse.SUPPRESS, allow_abbrev=False)
    g = p.add_argument_group("data")
    g.add_argument("--data", metavar="PATH",
                   help="dataset file or folder (train.txt/test.txt, u.data, ratings.dat, .inter, "
                        "CSV/TSV); default: the embedded synthetic dataset")
    g.add_argument("--format", metavar="FMT",
                   help=f"force a reader ({', '.join(FORMATS)}); default: detected from the file")
    g.add_argument("--valid-fraction", type=float, metavar="F",
                   help="when the split gives no validation pairs (--split given without a valid "
                        "file, a train:test ratio such as 8:2), move this fraction of each user's "
                        "training items to validation [default: 0.1 when needed]")
    g.add_argument("--remap", action="store_true",
                   help="number user and item ids 0.. in sorted order (needed for non-integer or "
                        "huge ids in lines/pairs files; CSV/TSV/u.data/ratings.dat/.inter remap "
                        "by default)")
    g.add_argument("--user-col", metavar="NAME",
                   help="user column of a CSV/TSV/.inter file [default: detected from the header]")
    g.add_argument("--item-col", metavar="NAME",
                   help="item column of a CSV/TSV/.inter file [default: detected from the header]")
    g.add_argument("--split", metavar="SPLIT",
                   help=f"train:valid:test ratio per user (e.g. 3:1:1, 8:1:1), 'given' or 'loo' "
                        f"[default: {d.split}]")
    g.add_argument("--split-seed", type=int, metavar="N",
                   help=f"seed of the data split, fixed across --seeds [default: {d.split_seed}]")
    g.add_argument("--split-rounding", choices=SPLIT_ROUNDINGS,
                   help="per-user sizes of a ratio split: half_up (round(n * share)), or floor "
                        "(RecBole: valid and test floored, a share in (0, 1) item gets one while "
                        f"train keeps more than one) [default: {d.split_rounding}]")
    g.add_argument("--min-rating", type=float, metavar="R",
                   help="keep interactions rated >= R as positives (the data must have ratings) "
                        "[default: keep all]")
    g = p.add_argument_group("model")
    g.add_argument("--model", choices=MODEL_NAMES,
                   help=f"recommender (gmf: GDNS's generalised MF) [default: {d.model}]")
    g.add_argument("--dim", type=int, metavar="D", help=f"embedding width [default: {d.dim}]")
    g.add_argument("--layers", type=int, metavar="K",
                   help=f"propagation layers of LightGCN/NGCF [default: {d.layers}]")
    g.add_argument("--propagation", choices=PROPAGATIONS,
                   help="graph products of LightGCN/NGCF (and MixGCF's layers): ops (the fused "
                        "C++/CUDA graph_propagate and spmm) or reference (torch.sparse.mm on COO "
                        "and stacked layers, the research code's path; the benchmark baseline) "
                        f"[default: {d.propagation}]")
    g.add_argument("--init", choices=INIT_SCHEMES,
                   help="embedding initialisation: normal (N(0, 0.1^2), LightGCN's code), "
                        "xavier (Xavier-uniform, NGCF's and DENS's code) or xavier_normal "
                        "(RecBole's) [default: the model's]")
    g = p.add_argument_group("what to run")
    g.add_argument("--search-space", metavar="S1,S2,...",
                   help=f"candidates of the search: samplers, schedules such as aobpr@5+dns "
                        f"(AOBPR for epochs 1-5, then DNS), samplers with options and "
                        f"alternatives such as dns(num_candidates=4|8|32) or dns(lr=1e-3|5e-3) "
                        f"(one candidate per value), or auto (--search sh: built from the "
                        f"data, see docs/search.md) [default: {','.join(d.search_space)}]")
    g.add_argument("--sampler", metavar="NAME[,NAME]",
                   help="train these samplers (or schedules, aobpr@5+dns) alone, each from "
                        "scratch (no search)")
    g.add_argument("--sampler-opt", action="append", metavar="SAMPLER.FIELD=VALUE",
                   help="an option of a sampler wherever it is trained (alone, inside a "
                        "schedule, as a search or racing candidate, in the grid), e.g. "
                        "dns.num_candidates=8, mixgcf.num_candidates=16, gdns.group_size=32, "
                        "dns.rank_lambda=none; repeatable; any field of the sampler's options "
                        "(see the sampler table of docs/search.md); a protocol's pool sizes are "
                        "set this way")
    g.add_argument("--search", choices=SEARCHES,
                   help="search strategy over --search-space: autosample = the paper's "
                        "Algorithm 1 + retrain; sh = successive halving on the validation "
                        "metric (same init and data order for every candidate, the survivor "
                        "trains on, no retrain); grid = every candidate alone, best by "
                        f"validation [default: {d.search}]")
    g.add_argument("--grid", action="store_true", help="the same as --search grid")
    g.add_argument("--compare", action="store_true",
                   help="AutoSample (with both --alpha-objective values), successive halving, "
                        "every candidate alone (the grid) and "
                        "every candidate trained for AutoSample's total epochs: the comparison "
                        "table with paired t-tests against the best single sampler, and the "
                        "CPU seconds of each search beside the grid's")
    g.add_argument("--sh-first-rung", type=int, metavar="R0",
                   help=f"successive halving: epochs of the first rung; rungs at R0*ETA^i "
                        f"[default: {d.sh_first_rung}]")
    g.add_argument("--sh-eta", type=int, metavar="ETA",
                   help=f"successive halving: keep ceil(n/ETA) candidates per rung "
                        f"[default: {d.sh_eta}]")
    g.add_argument("--sh-tie-se", type=float, metavar="Z",
                   help=f"successive halving: a dropped candidate within Z paired-bootstrap "
                        f"standard errors (validation users) of the last kept one is kept too; "
                        f"0 = off [default: {d.sh_tie_se}]")
    g.add_argument("--sh-tie-anchor", choices=("last", "best"),
                   help="successive halving, --sh-rule halving: the tie rule compares a dropped "
                        "candidate with the last kept one or with the best one (keeps halving "
                        f"a cluster of ties far behind the leader) [default: {d.sh_tie_anchor}]")
    g.add_argument("--sh-rule", choices=("race", "halving"),
                   help="successive halving: race = the leader, the top ceil(n/ETA) unless "
                        "clearly behind the leader, candidates catching up with it, ties for "
                        "one rung; halving = the classic top ceil(n/ETA) plus ties "
                        "(docs/search.md, "
                        f"'The race') [default: {d.sh_rule}]")
    g.add_argument("--sh-catch-up-se", type=float, metavar="Z",
                   help="successive halving, --sh-rule race: keep a candidate whose relative gap "
                        "to the leader shrank by ETA since the previous rung, when the gap it "
                        f"closed exceeds Z bootstrap SEs; 0 = off [default: {d.sh_catch_up_se}]")
    g.add_argument("--sh-brackets", type=int, metavar="B",
                   help="successive halving: Hyperband brackets, bracket b starting at "
                        f"R0*ETA^b epochs; 1 = plain successive halving [default: {d.sh_brackets}]")
    g.add_argument("--sh-bootstrap-users", type=int, metavar="N",
                   help="successive halving: rung decisions bootstrap over at most N validation "
                        f"users (a seeded subsample); 0 = all [default: {d.sh_bootstrap_users}]")
    g.add_argument("--sh-curriculum", choices=("off", "harder"),
                   help="successive halving: after the race, the winner's best state trains on "
                        "with the next harder candidate and is kept where validation improves "
                        f"[default: {d.sh_curriculum}]")
    g.add_argument("--num-negatives", type=int, metavar="T",
                   help=f"negatives per positive of single-sampler training (singles, grid, "
                        f"SH; the paper's Table 4 baselines) [default: {d.num_negatives}]")
    g.add_argument("--no-budget-singles", action="store_true",
                   help="--compare without the singles trained for AutoSample's epochs")
    g.add_argument("--retrain-init", choices=RETRAIN_INITS,
                   help=f"retraining starts from the searched weights or a random init "
                        f"(ablation) [default: {d.retrain_init}]")
    g.add_argument("--protocol", choices=PROTOCOLS,
                   help="settings that reproduce a peer's experiments exactly; an option you "
                        "give that the protocol fixes to another value is an error. "
                        + _protocol_help().replace("%", "%%") + f" [default: {d.protocol}]")
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=int, metavar="N",
                   help=f"maximum epochs of each training stage [default: {d.epochs}]")
    g.add_argument("--retrain-epochs", type=int, metavar="N",
                   help="maximum epochs of retraining [default: --epochs]")
    g.add_argument("--patience", type=int, metavar="N",
                   help=f"early stopping: evaluations without improvement, 0 = off "
                        f"[default: {d.patience}]")
    g.add_argument("--eval-every", type=int, metavar="E",
                   help=f"validate every E epochs [default: {d.eval_every}]")
    g.add_argument("--eval-start", type=int, metavar="N",
                   help="validate after epochs N, N+E, N+2E, ... only (DENS: 1, 6, 11, ...) "
                        "[default: after E, 2E, ... and the last epoch]")
    g.add_argument("--ties-improve", action="store_true",
                   help="a validation value equal to the best resets the patience and becomes "
                        "the best (DENS's and RecBole's early stopping)")
    g.add_argument("--eval-protocol", choices=EVAL_PROTOCOLS,
                   help="full: rank all items; sampled: rank the held-out item among its 100 "
                        f"fixed negatives (needs --split loo) [default: {d.eval_protocol}]")
    g.add_argument("--optimizer", choices=OPTIMIZERS,
                   help=f"optimiser of the model [default: {d.optimizer}]")
    g.add_argument("--engine", choices=ENGINES,
                   help="fused: MF / GMF with RNS, PNS, DNS or AOBPR train with one operator per "
                        "step (its adam is lazy Adam: only the batch's rows move); other models, "
                        "samplers and the AutoSample search use autograd and say so; autograd: "
                        f"everything with autograd and dense optimisers [default: {d.engine}]")
    g.add_argument("--lr", type=float, help=f"learning rate of the model [default: {d.lr}]")
    g.add_argument("--alpha-lr", type=float,
                   help=f"--alpha-objective train: Adam learning rate of the sampler weights "
                        f"alpha [default: {d.alpha_lr}]")
    g.add_argument("--tau", type=float,
                   help=f"Gumbel-softmax temperature of the search [default: {d.tau}]")
    g.add_argument("--batch-size", type=int, metavar="B",
                   help=f"(user, positive) pairs per step [default: {d.batch_size}]")
    g.add_argument("--drop-last", action="store_true",
                   help="drop the last partial batch of each epoch (DENS)")
    g.add_argument("--l2", type=float,
                   help=f"L2 weight on the batch embeddings [default: {d.l2}]")
    g.add_argument("--metric", help="validation criterion: recall@K, ndcg@K, precision@K, "
                                     f"hit@K or mrr@K (sampled: ndcg@K, recall@K) [default: {d.metric}]")
    g.add_argument("--ks", metavar="K1,K2", help="metric cut-offs [default: 20]")
    g.add_argument("--seeds", metavar="S1,S2,...",
                   help="training seeds; several give mean, std and the paired t-test [default: 0]")
    g = p.add_argument_group("AutoSample's alpha (--search autosample, --compare)")
    g.add_argument("--alpha-objective", metavar="OBJ",
                   help="what moves alpha: valid = each candidate's look-ahead gain in the "
                        "validation metric (probes: every candidate trains a few steps from the "
                        "same state, the state is put back); train = the training loss, the "
                        "paper's Algorithm 1 as written (it prefers the easiest sampler). "
                        f"--compare runs both. Choices: {', '.join(ALPHA_OBJECTIVES)} "
                        f"[default: {d.alpha_objective}]")
    g.add_argument("--alpha-step", type=float, metavar="S",
                   help=f"valid: step of alpha's logits per probe, in units of the normalised "
                        f"gain [default: {d.alpha_step}]")
    g.add_argument("--probe-every", type=int, metavar="N",
                   help="valid: training steps between probes [default: once per epoch, "
                        "or every few epochs so that probes are at least 15 steps apart]")
    g.add_argument("--probe-steps", type=int, metavar="W",
                   help=f"valid: look-ahead steps per candidate per probe [default: "
                        f"{d.probe_steps}]")
    g.add_argument("--probe-users", type=int, metavar="U",
                   help=f"valid: validation users the probes measure (a fixed random subset) "
                        f"[default: {d.probe_users}]")
    g = p.add_argument_group("system")
    g.add_argument("--device", help="cpu or cuda[:index] [default: cpu]")
    g.add_argument("--threads", type=int, metavar="N",
                   help="CPU threads of the process, >= 1 (torch.set_num_threads). Default 1: on a "
                        "shared machine a second thread waits for a busy core (measured on a "
                        "loaded 2-core machine: LightGCN steps 2-37x slower with 2 threads); give "
                        f"the number of idle cores on a dedicated machine [default: {DEFAULT_THREADS}]")
    g.add_argument("--dist-timeout", type=float, metavar="S",
                   help=f"under torchrun: seconds a process waits for the others in a collective "
                        f"before the job stops with an error [default: {DEFAULT_TIMEOUT_S:g}]")
    g.add_argument("--out", metavar="DIR",
                   help="run directory [default: runs/<mode>-<date>-<time>]")
    g.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="write the epoch-end checkpoint every N epochs (0: only on a stop signal "
                        "and at the end of each phase); a stop signal (Ctrl-C, SIGTERM) always "
                        "checkpoints at the next step [default: after every evaluation]")
    g.add_argument("--resume", action="store_true",
                   help="continue the run in the folder --out from its checkpoints, from any "
                        "working directory (the saved config; --data if the dataset moved)")
    g.add_argument("--no-progress", action="store_true",
                   help="no progress bars (they are off anyway when stderr is not a terminal)")
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return finite_floats(p)  # every float option: NaN and infinity are argument errors
