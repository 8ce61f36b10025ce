"""`le3d view RUN|scene.ply`: the browser viewer (viser) for a trained RUN or a standard 3DGS PLY."""
from __future__ import annotations

NAME = "view"
HELP = "open a trained RUN folder or a 3DGS .ply in the browser viewer (HDR controls, refocus, render modes)"


def add_arguments(parser) -> None:
    parser.add_argument("path", help="RUN folder written by `le3d train`, or a standard 3DGS .ply file")
    parser.add_argument("--port", type=int, default=8080, help="port (default 8080; 0 picks a free one)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--max-width", type=int, default=1280, help="full-resolution frame width (default 1280)")
    parser.add_argument("--snapshot-dir", default=None, help="where Snapshot writes (default RUN/snapshots)")


def run(args) -> int:
    import torch

    from le3d.errors import Le3dError
    from viewer.server import ViewerServer
    from viewer.source import load_source

    if args.device == "cuda" and not torch.cuda.is_available():
        raise Le3dError("--device cuda: no CUDA GPU available")
    if not 16 <= args.max_width <= 16384:
        raise Le3dError(f"--max-width {args.max_width}: must be 16..16384 pixels")
    if args.port != 0:
        _check_port_free(args.host, args.port)  # viser would silently move to the next free port
    source = load_source(args.path, device=args.device)
    try:
        viewer = ViewerServer(source, host=args.host, port=args.port, max_width=args.max_width,
                              snapshot_dir=args.snapshot_dir)
    except OSError as exc:
        raise Le3dError(f"cannot listen on {args.host}:{args.port} ({exc})") from None
    print(f"le3d view: {source.num_primitives:,} primitives; open {viewer.url} in a browser", flush=True)
    viewer.serve_forever()
    return 0


def _check_port_free(host: str, port: int) -> None:
    import socket

    from le3d.errors import Le3dError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise Le3dError(f"--host {host}: cannot resolve ({exc.strerror or exc})") from None
    family, _, _, _, addr = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is fine
        try:
            s.bind(addr)
        except OSError as exc:
            raise Le3dError(f"cannot listen on {host}:{port} ({exc.strerror or exc}); pass another --port, "
                            "or --port 0 for a free one") from None
