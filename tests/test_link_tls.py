"""TLS and mutual TLS on every hop (issue 17), with the certificates of `diffusec certs`: real gRPC
servers on loopback in this process (receiver, channel proxy with ChannelControl), untrained models."""
from __future__ import annotations

import grpc
import pytest
import torch
from click.testing import CliRunner

from channel_proxy.service import build_servers
from channel_proxy.state import ChannelState
from diffusec.cli import main as diffusec
from link_support import free_port, make_untrained_checkpoints
from protos.diffusec.link.v1 import link_pb2, link_pb2_grpc
from protos.tls import TlsError, TlsFiles, open_channel
from receiver.engine import Receiver
from receiver.policy import FixedPolicy
from receiver.service import build_server
from sender.link import LinkFailed, LinkSender, SenderOptions
from shared.pipeline import Pipeline


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    out = tmp_path_factory.mktemp("pki")
    done = CliRunner().invoke(diffusec, ["certs", str(out)])
    assert done.exit_code == 0, done.output
    again = CliRunner().invoke(diffusec, ["certs", str(out)])
    assert again.exit_code == 2 and "--force" in again.output
    return out


def files(pki, who: str) -> TlsFiles:
    return TlsFiles(pki / f"{who}.pem", pki / f"{who}-key.pem", pki / "ca.pem")


@pytest.fixture(scope="module")
def link(pki, tmp_path_factory):
    """A mutual-TLS receiver behind a mutual-TLS proxy -> (pipeline, proxy address, control address)."""
    checkpoints = make_untrained_checkpoints(tmp_path_factory.mktemp("ckpt"))
    pipeline = Pipeline.load("cifar10", checkpoints)
    receiver = Receiver(pipeline, FixedPolicy(2, 1), max_batch=8, max_wait_ms=1)
    server, port = build_server(receiver, "127.0.0.1:0", tls=files(pki, "server"))
    state = ChannelState(snr_db=20.0, upstream=f"127.0.0.1:{port}")
    proxy, control = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    servers = build_servers(state, proxy, control, f"127.0.0.1:{port}", tls=files(pki, "server"))
    yield pipeline, proxy, control
    servers[0].stop(0).wait()
    servers[1].stop(0).wait()
    servers[2].close()
    server.stop(0).wait()
    receiver.close()


def send(pipeline, address, tls: TlsFiles, n: int = 6):
    images = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8)
    with LinkSender(pipeline, address, SenderOptions(window=4, batch=4, retry_timeout_s=1.0), tls=tls) as sender:
        return sender.run(images)


def test_every_hop_speaks_mutual_tls(pki, link):
    pipeline, proxy, control = link
    result = send(pipeline, proxy, files(pki, "client"))
    assert all(a is not None for a in result.acks) and {a.t_p for a in result.acks} == {3}
    with open_channel(control, files(pki, "client"), []) as channel:
        stats = link_pb2_grpc.ChannelControlStub(channel).Stats(link_pb2.StatsRequest(), timeout=10)
    assert stats.acks_returned >= 6


@pytest.mark.parametrize("who", ["plaintext", "no client certificate", "another CA"])
def test_a_client_without_the_right_credentials_gets_nowhere(pki, link, tmp_path, who):
    pipeline, proxy, control = link
    if who == "plaintext":
        tls = TlsFiles()
    elif who == "no client certificate":
        tls = TlsFiles(ca=pki / "ca.pem")
    else:
        assert CliRunner().invoke(diffusec, ["certs", str(tmp_path)]).exit_code == 0
        tls = files(tmp_path, "client")
    with pytest.raises(LinkFailed, match="UNAVAILABLE"):
        send(pipeline, proxy, tls, n=1)
    with open_channel(control, tls, []) as channel, pytest.raises(grpc.RpcError) as err:
        link_pb2_grpc.ChannelControlStub(channel).Stats(link_pb2.StatsRequest(), timeout=5)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE


def test_tls_options_that_do_not_fit(pki):
    with pytest.raises(TlsError, match="go together"):
        TlsFiles(cert=pki / "server.pem")
    with pytest.raises(TlsError, match="needs --tls-cert"):
        TlsFiles(ca=pki / "ca.pem").server_credentials()
