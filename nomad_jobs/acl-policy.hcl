# What a jupyter_remote user's Nomad token needs, and nothing more.
#
#   nomad acl policy apply -description "jupyter_remote users" jupyter-remote nomad_jobs/acl-policy.hcl
#   nomad acl token create -name alice -policy jupyter-remote
#
# Replace "default" with the namespace the users' NOMAD_NAMESPACE names
# (one namespace block per namespace they may use).

namespace "default" {
  capabilities = [
    "list-jobs",       # find this session's and orphaned jobs (jupyter-remote gc)
    "read-job",        # job, allocation and evaluation status; the event stream
    "submit-job",      # register and stop worker jobs (and periodic schedules)
    "dispatch-job",    # run a scheduled job now
    "scale-job",       # change a worker group's count
    "read-job-scaling",
    "read-logs",       # show a failed worker's last log lines
    "alloc-lifecycle", # stop one worker allocation
  ]

  variables {
    # The worker's session token goes to nomad/jobs/<job id> before the job
    # is registered; the job's tasks read it there with their workload
    # identity, which needs no policy. Narrow the glob to your job prefix
    # ([nomad] job_prefix, default "jr") if users share the namespace:
    # path "nomad/jobs/jr-*".
    path "nomad/jobs/*" {
      capabilities = ["write", "read", "list", "destroy"]
    }

    # Secrets (`jupyter-remote secret`, secrets=[Secret.from_name(...)]): one
    # Variable per secret, read by the caller's process. Workers never read
    # them: the values travel over the controller's authenticated channel,
    # so jobs need no policy for them.
    path "jupyter_remote/secrets/*" {
      capabilities = ["write", "read", "list", "destroy"]
    }
  }
}

# GPU discovery (which GPU models the cluster has, for error messages) and
# "no node is big enough" checks list nodes with their resources.
node {
  policy = "read"
}

# Naming the node pools that exist when [nomad] node_pool is wrong.
node_pool "*" {
  policy = "read"
}
