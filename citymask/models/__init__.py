"""citymask's model parts, registered in mmdet by ``citymask.register``."""
