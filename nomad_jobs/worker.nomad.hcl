# The job jupyter_remote submits for the workers of one function, as readable HCL.
#
# The backend never renders this file: it builds the same shape as JSON in
# jupyter_remote/backends/nomad/_jobspec.py (build_worker_job, whose module
# docstring has the option -> field table) and PUTs it to /v1/jobs. A test
# parses this file with a real Nomad and compares it with build_worker_job's
# output for these values, so the two cannot drift apart.
#
# The values are those of one example: @app.function(gpu=["H100:2", "A100-80GB:2"],
# cpu=4, memory=32768, env={"HF_HOME": "/data/hf"}) on the raw_exec driver.
#
#   nomad job validate nomad_jobs/worker.nomad.hcl

job "jr-demo-embed-3f2a9c41" {           # <job_prefix>-<app>-<function>-<session>
  type        = "batch"                  # workers exit by themselves when idle
  namespace   = "default"                # NOMAD_NAMESPACE
  datacenters = ["*"]                    # [nomad] datacenters; "*" = all
  priority    = 50                       # [nomad] priority
  # region    = "global"                 # NOMAD_REGION; omitted: the agent's region
  # node_pool = "gpu"                    # [nomad] node_pool; omitted: "default"

  # Never run by itself: each worker is one dispatch of this job (meta worker=<n>),
  # stopped by stopping its dispatched job, so none is ever replaced or placed
  # after the pool stopped wanting it.
  parameterized {
    payload       = "forbidden"
    meta_required = ["worker"]
  }

  # Who started the job, so `jupyter-remote gc` can find orphans and stop them.
  meta {
    app        = "demo"
    function   = "demo.embed"
    owner      = "alice"
    session    = "3f2a9c41"
    controller = "10.0.0.5:43117"        # where workers connect back to
  }

  group "workers" {
    count = 1                            # one allocation per dispatch (per worker)

    # The controller retries inputs and replaces workers; Nomad must not.
    restart {
      attempts = 0
      mode     = "fail"
    }
    reschedule {
      attempts  = 0
      unlimited = false
    }

    # Only with @app.function(ephemeral_disk=MiB); otherwise Nomad's default (300 MB).
    # ephemeral_disk {
    #   size = 2048
    # }

    task "worker" {
      driver = "raw_exec"                # or "exec"; docker: see the end of this file

      config {
        command = "python3"              # [nomad] python: the nodes' interpreter
        # Filled in by the backend: how the worker fetches the runtime and
        # dials the controller. Nomad interpolates ${NOMAD_ALLOC_ID}.
        args = ["-m", "jupyter_remote.runtime", "--connect", "10.0.0.5:43117",
                "--worker-id", "${NOMAD_ALLOC_ID}"]
      }

      # The function's env=, never a secret. JUPYTER_REMOTE_GPU_FROM_NVIDIA tells
      # the worker to copy NVIDIA_VISIBLE_DEVICES (the GPUs the device plugin
      # assigned) to CUDA_VISIBLE_DEVICES: raw_exec cannot hide the others.
      # A worker without GPUs on raw_exec gets CUDA_VISIBLE_DEVICES = "" instead.
      env {
        HF_HOME                        = "/data/hf"
        JUPYTER_REMOTE_GPU_FROM_NVIDIA = "1"
      }

      resources {
        cores  = 4                       # whole cpu= -> reserved cores;
                                         # fractional -> cpu = ceil(cores * 1000) MHz
        memory = 32768                   # MiB (Nomad calls it MB)

        # gpu=["H100:2", "A100-80GB:2"]: one device request for 2 GPUs of one
        # model on one node, accepting either model, preferring the first.
        device "nvidia/gpu" {
          count = 2

          constraint {
            attribute = "${device.model}"  # NVML's name, e.g. "NVIDIA H100 80GB HBM3"
            operator  = "regexp"           # RE2; the GPU table's regexes, OR-ed
            value     = "(?:^NVIDIA H100( .*)?$)|(?:^NVIDIA A100[- ].*80GB.*$)"
          }
          constraint {
            attribute = "${device.attr.memory}"  # int attribute in MiB
            operator  = ">="
            value     = "73728 MiB"        # the unit is required: a bare number
                                           # is not comparable and matches nothing
          }

          # Preference order: weights 100, 50, 25, ... (one per choice).
          affinity {
            attribute = "${device.model}"
            operator  = "regexp"
            value     = "^NVIDIA H100( .*)?$"
            weight    = 100
          }
          affinity {
            attribute = "${device.model}"
            operator  = "regexp"
            value     = "^NVIDIA A100[- ].*80GB.*$"
            weight    = 50
          }
        }
      }

      # Each worker's own credential (accepted once, for its worker id only):
      # written by the backend to item "w<n>" (n: the dispatch's meta worker) of the Nomad Variable
      # nomad/jobs/<job id>, which the task's workload identity may read
      # without any ACL policy, rendered into a 0600 file and from there into
      # the task's environment. With TLS, item "fingerprint" (the controller
      # certificate's pin) is rendered as JUPYTER_REMOTE_TLS_FINGERPRINT too.
      # Neither appears in the job spec.
      template {
        data        = <<-EOT
        {{ with nomadVar "nomad/jobs/jr-demo-embed-3f2a9c41" }}JUPYTER_REMOTE_TOKEN={{ index . (printf "w%s" (env "NOMAD_META_worker")) }}{{ end }}
        EOT
        destination = "secrets/token.env"
        perms       = "0600"
        env         = true
        change_mode = "noop"
      }

      kill_signal  = "SIGTERM"           # the worker shuts down on SIGTERM (SIGINT,
                                         # Nomad's default, only interrupts an input)
      kill_timeout = "10s"
    }
  }
}

# With driver = "docker" the task's config is instead:
#
#   config {
#     image        = "python:3.11-slim"  # [nomad] docker_image; needs python3
#     command      = "python3"
#     args         = [...]               # as above
#     network_mode = "host"              # workers dial out to the controller
#   }
#
# GPUs then need the NVIDIA container runtime on the node; Nomad's docker
# driver selects it by itself when the task has NVIDIA devices.
