"""le3d browser viewer (viser): server-side HDR rendering streamed as JPEG, per-client settings.

Entry points: `le3d view RUN|scene.ply`, `viewer.server.ViewerServer`, `viewer.live.start_live_viewer`.
"""
