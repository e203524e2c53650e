"""Registers the image components: AMDIM (Bachman et al. 2019) and CPC on image patches
(van den Oord et al. 2018, section 3.2), image datasets and the linear probe.

The modules imported here hold config classes and torch code only; torchvision, Pillow,
datasets and matplotlib are imported inside the functions that use them, so listing
plugins or checking a recipe never loads them.
"""

from __future__ import annotations

from cpcframe import hookimpl

from cpcframe_image import probe
from cpcframe_image.amdim import critics as amdim_critic
from cpcframe_image.amdim import encoders as amdim_encoder
from cpcframe_image.amdim import views as amdim_views
from cpcframe_image.data import folder, hf_images
from cpcframe_image.data import torchvision_readers as tv_datasets
from cpcframe_image.patches import context_models as pixelcnn
from cpcframe_image.patches import critics as grid_critic
from cpcframe_image.patches import encoders as patch_encoder
from cpcframe_image.patches import views as patch_views


@hookimpl
def register_encoders(register):
    register("amdim", amdim_encoder.build_amdim_encoder, amdim_encoder.AmdimEncoderConfig)
    register("patch_resnet", patch_encoder.build_patch_resnet, patch_encoder.PatchResNetConfig)


@hookimpl
def register_context_models(register):
    register("pixelcnn", pixelcnn.build_pixelcnn, pixelcnn.PixelCNNConfig)


@hookimpl
def register_view_samplers(register):
    register("amdim_views", amdim_views.build_amdim_views, amdim_views.AmdimViewsConfig)
    register("image_patches", patch_views.build_image_patches, patch_views.ImagePatchesConfig)


@hookimpl
def register_critics(register):
    register("amdim", amdim_critic.build_amdim_critic, amdim_critic.AmdimCriticConfig)
    register("cpc_grid", grid_critic.build_grid_critic, grid_critic.GridCriticConfig)


@hookimpl
def register_datasets(register):
    register("image_folder", folder.build_image_folder, folder.ImageFolderConfig)
    register("cifar10", tv_datasets.build_cifar10, tv_datasets.CifarConfig)
    register("cifar100", tv_datasets.build_cifar100, tv_datasets.CifarConfig)
    register("stl10", tv_datasets.build_stl10, tv_datasets.STL10Config)
    register("hf_images", hf_images.build_hf_images, hf_images.HFImagesConfig)


@hookimpl
def register_probes(register):
    register("image_linear", probe.build_image_linear, probe.ImageLinearConfig)
