"""Training losses: RawNeRF weighted L2, S3IM, SSIM, depth distortion, near-far, alpha."""
from le3d.losses.rawnerf import l1_loss, l2_loss, rawnerf_l2
from le3d.losses.regularizers import alpha_loss, distortion_loss, nearfar_loss
from le3d.losses.s3im import s3im_loss
from le3d.losses.ssim import ssim

__all__ = ["alpha_loss", "distortion_loss", "l1_loss", "l2_loss", "nearfar_loss", "rawnerf_l2", "s3im_loss", "ssim"]
