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
