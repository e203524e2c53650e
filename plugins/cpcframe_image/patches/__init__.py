"""CPC on image patches (van den Oord et al. 2018, section 3.2): patch grids, the patch ResNet, the PixelCNN context and the grid critic."""
