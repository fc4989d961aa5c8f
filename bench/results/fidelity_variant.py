"""Control runs of bench/results/fidelity_dens.md: python/dens_protocol.py with DENS-code details
switched on by environment variables (monkeypatches autosample_ext.experiment; a measurement tool,
not library code). Run from the repository root with PYTHONPATH=. and the dens_protocol flags.
POOL_M: DNS/MixGCF candidate pool; INIT=xavier: Xavier-uniform init (DENS/MixGCF code);
L2: our l2 coefficient (DENS's 1e-4 * 1/2 * sum sq / B == our 5e-5 * sum sq / B)."""
import os, sys
sys.path.insert(0, os.getcwd()); sys.path.insert(0, os.path.join(os.getcwd(), "python"))
import autosample_ext.experiment.phases as R
import autosample_ext.experiment.config as C
from autosample_ext.samplers import build_sampler as _bs
from autosample_ext.models import build_model as _bm
M = os.environ.get("POOL_M")
def bs(name, data, seed, device):
    opts = {"num_candidates": int(M)} if (M and name in ("dns", "mixgcf")) else {}
    return _bs(name, data, seed=seed, device=device, **opts)
R.build_sampler = bs
if os.environ.get("INIT"):
    def bm(cfg, data, seed):
        return _bm(cfg.model, data, dim=cfg.dim, seed=seed, device=cfg.device,
                   num_layers=cfg.layers, init=os.environ["INIT"])
    R.build_model = bm
if os.environ.get("L2"):
    C.DENS_SETTINGS["l2"] = float(os.environ["L2"])
import dens_protocol
sys.exit(dens_protocol.main())
