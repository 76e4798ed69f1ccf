"""Attribution for audit runs: Grad-CAM and friends on the failures, overlays and region scores.

One verb whatever the method::

    from explain.registry import get_method

    method = get_method("gradcam", model, layer=None, input_shape=(3, 224, 224))
    maps = method.attribute(inputs, targets)  # [N, H, W] (or [N, K, H, W]) in [0, 1], on the device

Modules: ``base`` (the ``Attributor`` interface and pytorch-grad-cam's normalisation in torch),
``gradcam`` (fast batched Grad-CAM; ``gradcam_plusplus``, ``xgradcam``, ``layercam``,
``hirescam`` share it), ``cam_methods`` (pytorch-grad-cam's classes by name),
``captum_methods`` (LayerGradCam, IntegratedGradients), ``registry`` (names), ``layers``
(target layer), ``select`` (which images), ``regions`` (energy in box, pointing game),
``pairs`` (per-pair sentences), ``overlay`` (PNGs), ``outputs`` (the explain folder's files),
``stage`` (the run stage and the command's worker; images are read and normalised by
``audits.inference``, as for inference). Importing this package imports nothing heavy.
"""
