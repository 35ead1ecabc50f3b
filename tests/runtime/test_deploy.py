"""deploy/ files parse and build what they should; local and TLS clusters really run."""

from __future__ import annotations

import json

import dask
import dask.array as da
import numpy as np
import pytest
import yaml

import tomochunk as tc
from tomochunk.runtime.cluster import connect
from tomochunk.runtime.gpu import gpu_resources

from ..cluster_utils import REPO, local_cluster, make_tls_certs

DEPLOY = REPO / "deploy"


def _load_jobqueue() -> dict:
    return yaml.safe_load((DEPLOY / "slurm/jobqueue.yaml").read_text())


def test_jobqueue_config_builds_cpu_and_gpu_job_scripts():
    pytest.importorskip("dask_jobqueue")
    import importlib.util

    spec = importlib.util.spec_from_file_location("launch", DEPLOY / "slurm/launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    with dask.config.set(_load_jobqueue()):
        cluster = launch.make_cluster(dashboard_address=":0")
        try:
            cpu = cluster.job_script()
            gpu = launch.gpu_job_script(cluster)
        finally:
            cluster.close()
    assert "#SBATCH -J tomochunk-cpu" in cpu
    assert "#SBATCH -t 04:00:00" in cpu
    assert "#SBATCH --exclusive" in cpu
    assert "--nthreads 1" in cpu and "--nworkers 32" in cpu
    assert "--lifetime 220m --lifetime-stagger 10m --lifetime-restart" in cpu
    assert "#SBATCH --gres=gpu:1" in gpu
    assert "--resources GPU=1" in gpu
    assert "--gres" not in cpu and "GPU=1" not in cpu


def test_kubernetes_specs_have_cpu_and_gpu_groups():
    cluster = yaml.safe_load((DEPLOY / "kubernetes/daskcluster.yaml").read_text())
    gpu = yaml.safe_load((DEPLOY / "kubernetes/daskworkergroup-gpu.yaml").read_text())
    assert cluster["kind"] == "DaskCluster"
    assert cluster["apiVersion"] == gpu["apiVersion"] == "kubernetes.dask.org/v1"
    wargs = cluster["spec"]["worker"]["spec"]["containers"][0]["args"]
    assert wargs[:2] == ["dask", "worker"] and "GPU=1" not in wargs
    assert gpu["kind"] == "DaskWorkerGroup" and gpu["spec"]["cluster"] == "tomochunk"
    c = gpu["spec"]["worker"]["spec"]["containers"][0]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    i = c["args"].index("--resources")
    assert c["args"][i + 1] == "GPU=1"


def test_dockerfile_installs_tomochunk():
    text = (DEPLOY / "docker/Dockerfile").read_text()
    assert "FROM python:3.11" in text
    assert 'pip install ".[astra,deploy]"' in text
    assert "torch==2.13.0" in text


@pytest.mark.cluster
def test_local_scripts_start_a_real_cluster(tmp_path):
    with local_cluster(tmp_path, 2) as sf:
        assert json.loads(sf.read_text())["address"].startswith("tcp://")
        with connect(tc.ClusterConfig(scheduler_file=str(sf))) as client:
            assert len(client.scheduler_info()["workers"]) == 2
            assert gpu_resources(client) is None  # no GPU here
            x = da.arange(1000, chunks=100)
            assert int(x.sum().compute()) == 499500


@pytest.mark.cluster
def test_tls_cluster_runs_a_job(tmp_path):
    certs = make_tls_certs(tmp_path)
    with local_cluster(tmp_path, 1, protocol="tls", tls=certs) as sf:
        address = json.loads(sf.read_text())["address"]
        assert address.startswith("tls://")
        with pytest.raises(tc.ConfigError, match="uses TLS"):
            with connect(tc.ClusterConfig(scheduler=address)):
                pass
        cfg = tc.ClusterConfig(scheduler=address, tls_ca_file=certs["ca"],
                               tls_cert=certs["cert"], tls_key=certs["key"])
        with connect(cfg) as client:
            vol = np.random.default_rng(0).random((8, 16, 16)).astype("f4")
            got = client.compute(da.from_array(vol, chunks=(2, 16, 16)).mean()).result()
            assert got == pytest.approx(float(vol.mean()), rel=1e-6)
