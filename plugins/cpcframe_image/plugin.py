"""Registers the image components: AMDIM (Bachman et al. 2019) and CPC on image patches
(van den Oord et al. 2018, section 3.2), image datasets and the linear probe.

The modules imported here hold config classes and torch code only; torchvision, Pillow,
datasets and matplotlib are imported inside the functions that use them, so listing
plugins or checking a recipe never loads them.
"""

from __future__ import annotations

from cpcframe import hookimpl

from cpcframe_image import probe
from cpcframe_image.amdim import critics as amdim_critics
from cpcframe_image.amdim import encoders as amdim_encoders
from cpcframe_image.amdim import views as amdim_views
from cpcframe_image.data import hf_images, image_folder, torchvision_readers
from cpcframe_image.patches import context_models as patch_context_models
from cpcframe_image.patches import critics as patch_critics
from cpcframe_image.patches import encoders as patch_encoders
from cpcframe_image.patches import views as patch_views


@hookimpl
def register_encoders(register):
    register("amdim", amdim_encoders.build_amdim_encoder, amdim_encoders.AmdimEncoderConfig)
    register("patch_resnet", patch_encoders.build_patch_resnet, patch_encoders.PatchResNetConfig)


@hookimpl
def register_context_models(register):
    register("pixelcnn", patch_context_models.build_pixelcnn, patch_context_models.PixelCNNConfig)


@hookimpl
def register_view_samplers(register):
    register("amdim_views", amdim_views.build_amdim_views, amdim_views.AmdimViewsConfig)
    register("image_patches", patch_views.build_image_patches, patch_views.ImagePatchesConfig)


@hookimpl
def register_critics(register):
    register("amdim", amdim_critics.build_amdim_critic, amdim_critics.AmdimCriticConfig)
    register("cpc_grid", patch_critics.build_grid_critic, patch_critics.GridCriticConfig)


@hookimpl
def register_datasets(register):
    register("image_folder", image_folder.build_image_folder, image_folder.ImageFolderConfig)
    register("cifar10", torchvision_readers.build_cifar10, torchvision_readers.CifarConfig)
    register("cifar100", torchvision_readers.build_cifar100, torchvision_readers.CifarConfig)
    register("stl10", torchvision_readers.build_stl10, torchvision_readers.STL10Config)
    register("hf_images", hf_images.build_hf_images, hf_images.HFImagesConfig)


@hookimpl
def register_probes(register):
    register("image_linear", probe.build_image_linear, probe.ImageLinearConfig)
