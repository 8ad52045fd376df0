from latentdirs.demo import run_demo


def test_demo_runs_end_to_end_in_a_reduced_setting(tmp_path):
    report = run_demo("planted", num_directions=4, steps=6, rca_steps=3, batch_size=16, runs_dir=tmp_path,
                      progress=False)
    text = report.read_text()
    assert "| discovered (LD, unit) |" in text and "| random orthonormal |" in text and "| coordinate axes |" in text
    run = report.parent
    assert (run / "charts" / "overview.png").exists()
    assert (run / "discovery" / "directions" / "directions.safetensors").exists()
    for line in text.splitlines():  # every image the report links exists
        if line.startswith("!["):
            assert (run / line.split("(")[1].rstrip(")")).exists()


def test_demo_command_runs_on_the_shipped_gan(tmp_path, capsys):
    # `latentdirs demo` without --generator is the README's first command: it must use the shipped shapes3d GAN.
    import json
    import re

    import torch
    from PIL import Image

    from latentdirs import DirectionSet
    from latentdirs.cli import main

    assert main(["demo", "-k", "3", "--steps", "8", "--rca-steps", "4", "--batch-size", "8",
                 "--runs-dir", str(tmp_path), "--threads", "1"]) == 0
    (run,) = tmp_path.iterdir()
    assert run.name == "00000-demo-shapes3d-k3"
    config = json.loads((run / "config.json").read_text())
    assert config["demo"]["generator"] == "shapes3d" and config["generator"]["latent_dim"] == 64
    found = DirectionSet.load(run / "discovery")
    assert found.matrix.shape == (64, 3) and found.meta["generator"]["name"] == "shapes3d"
    assert not torch.allclose(found.matrix, torch.eye(64)[:, :3], atol=1e-4)  # A was trained
    assert (found.scores > 0).all()  # every direction changes the GAN's images
    text = (run / "report.md").read_text()
    rca = {m[0]: float(m[1]) for m in re.findall(r"^\| (discovered \(LD, unit\)|random orthonormal|coordinate axes) \| "
                                                 r"([0-9.]+) \|", text, flags=re.M)}
    assert set(rca) == {"discovered (LD, unit)", "random orthonormal", "coordinate axes"}
    printed = capsys.readouterr().out
    assert all(f"RCA {v:.3f}  {k}" in printed for k, v in rca.items())  # the report holds what was measured
    with Image.open(run / "charts" / "overview.png") as sheet:
        assert sheet.height >= 3 * 64  # one row of 64-px renders per direction
