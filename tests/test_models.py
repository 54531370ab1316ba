"""Every registered model on tiny CPU inputs: shapes, finite loss, backward, gradients, a step, typed results."""

from __future__ import annotations

import contextlib

import pytest
import torch

from wdmt.models import MODELS, Batch, create_model

SIZE = 32
# models that learn by gradient steps; the memory-bank ones (PatchCore, PaDiM) and the fusion of two fitted runs
# have tests of their own (tests/test_feature_models.py)
TRAINED = sorted(n for n, e in MODELS.items() if not (e.info.memory_bank or e.info.composite))


def _batch(model, b: int = 2, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 1, SIZE, SIZE, generator=g)
    hog = torch.rand(b, 3, SIZE, SIZE, generator=g) if model.needs_hog else None
    return Batch(image=x, target=x, hog=hog, hog_index=torch.randint(0, 3, (b,), generator=g))


def _tiny(name: str):
    torch.manual_seed(0)
    fields = MODELS[name].config_cls.__dataclass_fields__
    opts = {"width": 4}
    if "latent_steps" in fields:
        opts["latent_steps"] = 3  # AnoGAN's test-time search: a few steps are enough to test it
    return create_model(name, **opts)


@pytest.mark.parametrize("name", TRAINED)
def test_forward_backward_every_parameter_learns(name):
    model = _tiny(name)
    model.train()
    if hasattr(model, "alpha"):
        model.alpha.fill_(0.5)  # mid-decay: every parameter must get gradient (see the alpha = 1 test)
    loss, logs = model.loss(_batch(model))
    assert torch.isfinite(loss) and logs
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:  # a frozen ImageNet encoder (synth-seg) is not trained, by design
            assert p.grad is not None and p.grad.abs().sum() > 0, f"{name}: {pname} got no gradient"
    assert any(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", TRAINED)
def test_one_step_changes_weights_and_predict_is_typed(name):
    model = _tiny(name)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    opts = model.configure_optimizers(1e-3, 0.0)
    model.on_train_iteration(0, 10)
    res = model.training_step(_batch(model), opts, contextlib.nullcontext)
    assert torch.isfinite(torch.tensor(res.logs["loss"]))
    changed = [k for k, v in model.state_dict().items() if v.dtype.is_floating_point and not torch.equal(v, before[k])]
    assert changed
    model.eval()
    x = torch.rand(3, 1, SIZE, SIZE)
    out = model.predict(x, with_latent=True)
    assert out.anomaly_map.shape == (3, 1, SIZE, SIZE) and out.recon.shape == x.shape
    assert out.score.shape == (3,) and torch.isfinite(out.anomaly_map).all()
    assert (out.anomaly_map >= 0).all()


def test_alpha_one_pins_the_official_gradient_flow():
    """At alpha = 1 only inc, up4 and outc learn: the decoder path enters only through (1 - alpha) and a
    detached copy."""
    model = create_model("unet", width=4)
    loss, _ = model.loss(_batch(model))
    loss.backward()
    learns = {n.split(".")[0] for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert learns == {"inc", "up4", "outc"}


@pytest.mark.parametrize("name", ["wdmt", "ae", "unet"])
def test_alpha_zero_cuts_the_skips(name):
    """At alpha = 0 the output does not depend on what the encoder sends over the skips: replacing every skip
    feature with noise changes nothing. With the skips partly open it changes the output (else the test could not
    fail), and at each model's own alpha the skips matter exactly when that alpha is above 0."""
    model = create_model(name, width=4).eval()
    x = torch.rand(1, 1, SIZE, SIZE)
    ups = [model.up1, model.up2, model.up3, model.up4]

    def output(alpha, scramble):
        hooks = (
            [
                up.register_forward_pre_hook(lambda _m, args: (args[0], torch.randn_like(args[1]), *args[2:]))
                for up in ups
            ]
            if scramble
            else []
        )
        try:
            return model(x, alpha=alpha)[1]
        finally:
            for h in hooks:
                h.remove()

    assert torch.equal(output(0.0, False), output(0.0, True))
    assert not torch.allclose(output(0.3, False), output(0.3, True))
    own = float(model.alpha)
    assert torch.equal(output(own, False), output(own, True)) == (own == 0.0)


def test_alpha_schedule():
    model = create_model("wdmt", width=4, delta=0.05)
    n = 10  # iterations per epoch
    model.on_train_iteration(0, n)
    assert float(model.alpha) == pytest.approx(1 - 0.05 / n)
    model.on_train_iteration(5 * n - 1, n)  # end of epoch 5
    assert float(model.alpha) == pytest.approx(0.75)
    model.on_train_iteration(20 * n - 1, n)
    assert float(model.alpha) == 0.0 and model.selection_ready()
    model.on_train_iteration(1000 * n, n)
    assert float(model.alpha) == 0.0
    fixed = create_model("unet", width=4)
    fixed.on_train_iteration(500, n)
    assert float(fixed.alpha) == 1.0


def test_alpha_is_saved_with_the_weights():
    a = create_model("wdmt", width=4)
    a.on_train_iteration(33, 10)
    b = create_model("wdmt", width=4)
    b.load_state_dict(a.state_dict())
    assert float(b.alpha) == float(a.alpha) < 1


def test_official_single_channel_hog_head():
    m = create_model("wdmt", width=4, hog="official")
    _, out = m(torch.rand(1, 1, SIZE, SIZE))
    assert out.shape[1] == 2
    loss, logs = m.loss(_batch(m))
    assert "hog" in logs and torch.isfinite(loss)


def test_rgb_input():
    m = create_model("wdmt", width=4, in_channels=3)
    out = m.eval().predict(torch.rand(2, 3, SIZE, SIZE))
    assert out.recon.shape == (2, 3, SIZE, SIZE) and out.anomaly_map.shape == (2, 1, SIZE, SIZE)


def test_unknown_model_option_is_refused():
    from wdmt import WdmtError

    with pytest.raises(WdmtError, match="unknown option"):
        create_model("wdmt", widht=4)


def test_models_cli_lists_every_model(capsys):
    import json

    from wdmt.cli import main

    assert main(["models", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == list(MODELS)
    expected = {
        "ae",
        "unet",
        "wdmt-nohog",
        "ae-hog",
        "unet-hog",
        "wdmt",
        "ae-baur",
        "memae",
        "bionet",
        "attn-unet",
        "anogan",
        "f-anogan",
        "ganomaly",
        "sparse-gan",
        "proxyano",
        "patchcore",
        "padim",
        "contrast",
        "synth-seg",
        "wdmt-synth",
        "fusion",
    }
    assert set(MODELS) == expected
    assert {r["name"] for r in rows if r["adversarial"]} == {"anogan", "f-anogan", "ganomaly", "sparse-gan"}
    assert {r["name"] for r in rows if r["needs_hog"]} == {"ae-hog", "unet-hog", "wdmt", "wdmt-synth"}


@pytest.mark.parametrize("name", ["ganomaly", "anogan", "sparse-gan"])
def test_dcgan_init_is_applied(name):
    """Unlike anomalib's no-op, the DCGAN init really runs: conv weights have std ~0.02."""
    m = create_model(name, width=8)
    convs = [p for n, p in m.named_parameters() if p.ndim == 4]
    std = torch.cat([p.detach().flatten() for p in convs]).std().item()
    assert 0.015 < std < 0.025


@pytest.mark.parametrize("name", TRAINED)
def test_inference_form_keeps_the_maps(name):
    model = _tiny(name)
    if name.startswith("wdmt"):
        model.alpha.fill_(0.0)  # trained: skips closed, so the closed-skip algebra is exercised too
    model.train()
    for s in range(3):
        model.loss(_batch(model, seed=s))  # move the running statistics away from their initial values (grads unused)
    model.eval()
    x = torch.rand(3, 1, SIZE, SIZE)
    torch.manual_seed(1)
    before = model.predict(x)
    n_bn = sum(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    model.fold_for_inference()
    torch.manual_seed(1)
    after = model.predict(x)
    torch.testing.assert_close(after.anomaly_map, before.anomaly_map, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(after.recon, before.recon, atol=2e-5, rtol=1e-4)
    if name in ("wdmt", "unet", "ae"):
        assert n_bn > 0 and not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    if name in ("wdmt", "ae"):
        assert all(up.closed for up in (model.up1, model.up2, model.up3, model.up4))
        with pytest.raises(RuntimeError, match="closed"):
            model(x, alpha=0.5)


class _CountingAutocast:
    """A stand-in for the run's autocast factory that counts how many forward passes entered it."""

    def __init__(self) -> None:
        self.entered = 0

    def __call__(self):
        self.entered += 1
        return contextlib.nullcontext()


@pytest.mark.parametrize("name", TRAINED)
def test_every_optimiser_step_runs_under_the_runs_autocast(name):
    """bf16 training (``--cpu-bf16``, CUDA amp) must reach every optimiser a model steps, not only some of them."""
    model = _tiny(name)
    opts = model.configure_optimizers(1e-3, 0.0)
    ac = _CountingAutocast()
    model.on_fit_start(10)
    model.on_train_iteration(0, 10)
    model.training_step(_batch(model), opts, ac)
    stepped_first = {"f-anogan": 2}.get(name, len(opts))  # f-AnoGAN's stage 1 steps critic and generator, not E
    assert ac.entered == stepped_first
    if name == "f-anogan":
        model.on_train_iteration(9, 10)  # past gan_fraction: the encoder stage
        model.training_step(_batch(model), opts, ac)
        assert ac.entered == stepped_first + 1


@pytest.mark.parametrize("name", ["wdmt", "ganomaly", "f-anogan"])
def test_a_non_finite_loss_is_refused_before_the_weights_change(name, monkeypatch):
    model = _tiny(name)
    opts = model.configure_optimizers(1e-3, 0.0)
    model.on_fit_start(10)
    model.on_train_iteration(0, 10)
    if name == "f-anogan":  # the generator step, which had no check
        monkeypatch.setattr(model, "_generator_loss", lambda n, device: torch.tensor(float("nan"), requires_grad=True))
        watched = model.generator
    else:
        real = model.loss if name == "wdmt" else model.generator_loss
        attr = "loss" if name == "wdmt" else "generator_loss"

        def poisoned(batch):
            out = real(batch)
            return (out[0] * float("nan"), *out[1:])

        monkeypatch.setattr(model, attr, poisoned)
        watched = model
    before = {k: v.detach().clone() for k, v in watched.named_parameters()}
    with pytest.raises(FloatingPointError, match="loss is nan"):
        model.training_step(_batch(model), opts, contextlib.nullcontext)
    # no step was taken on the poisoned loss (f-AnoGAN's critic stepped first; its generator did not move)
    assert all(torch.equal(v, before[k]) for k, v in watched.named_parameters())


@pytest.mark.parametrize("name", TRAINED)
def test_fov_loss_ignores_what_lies_outside_the_field_of_view(name):
    """With a FOV in the batch, changing the target outside it changes no reconstruction loss (GAN terms aside,
    which judge whole tiles); without one, the loss is the method's plain mean."""
    from dataclasses import replace

    model = _tiny(name)
    model.eval()  # fixed BatchNorm statistics: two forward passes see the same network
    b = _batch(model)
    fov = torch.zeros(b.image.shape[0], 1, SIZE, SIZE)
    fov[..., 4:28, 4:28] = 1
    target = b.target.clone()
    target[..., :4, :] = 1.0  # outside the FOV only
    torch.manual_seed(3)
    a = model.loss(replace(b, fov=fov))[1]
    torch.manual_seed(3)
    c = model.loss(replace(b, fov=fov, target=target))[1]
    if "recon" in a:
        assert a["recon"] == pytest.approx(c["recon"], rel=1e-5, abs=1e-7)
    torch.manual_seed(3)
    plain = model.loss(b)[1]
    torch.manual_seed(3)
    moved = model.loss(replace(b, target=target))[1]
    if "recon" in plain and name != "f-anogan":  # f-AnoGAN reconstructs its input, not the target
        assert plain["recon"] != pytest.approx(moved["recon"], rel=1e-5)  # the check above could fail
