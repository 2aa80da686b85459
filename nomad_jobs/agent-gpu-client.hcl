# A Nomad client with NVIDIA GPUs that runs jupyter_remote workers.
#
# Install next to Nomad:
#   - the NVIDIA driver (nvidia-smi works; the plugin loads libnvidia-ml.so);
#   - the device plugin binary from releases.hashicorp.com/nomad-device-nvidia,
#     unpacked into plugin_dir below as "nomad-device-nvidia";
#   - Python 3 (same minor version as your notebooks) for raw_exec and exec,
#     and/or Docker with the NVIDIA Container Toolkit for the docker driver.
#
# Check what the node reports after a start:
#   nomad node status -verbose -self      # Device Resource Utilization, drivers
#
# This file holds the client part only: add your tls {}, acl {} and
# consul {} blocks as for your other clients.

datacenter = "dc1"
data_dir   = "/opt/nomad/data"
plugin_dir = "/opt/nomad/plugins"   # holds the nomad-device-nvidia binary

client {
  enabled = true
  servers = ["nomad-server.example.internal:4647"]

  # Optional: keep GPU nodes for GPU work. Point the backend at the pool with
  # [nomad] node_pool = "gpu" (the pool must exist: nomad node pool apply).
  # node_pool = "gpu"
}

# The block label must be the plugin binary's file name in plugin_dir:
# external plugins get their config by that name.
plugin "nomad-device-nvidia" {
  config {
    enabled            = true
    fingerprint_period = "1m"
    # ignored_gpu_ids  = ["GPU-3f2a9c41-..."]   # GPUs Nomad must not hand out
  }
}

# raw_exec: workers run the node's Python directly. It cannot confine a task
# to its GPUs, so the worker sets CUDA_VISIBLE_DEVICES from the
# NVIDIA_VISIBLE_DEVICES Nomad gives it (and to "" when it asked for none).
plugin "raw_exec" {
  config {
    enabled = true
  }
}

# docker: the driver switches to the "nvidia" runtime by itself for tasks with
# NVIDIA devices; that runtime must be installed and allowed (the defaults).
plugin "docker" {
  config {
    nvidia_runtime = "nvidia"
    allow_runtimes = ["runc", "nvidia"]
  }
}
