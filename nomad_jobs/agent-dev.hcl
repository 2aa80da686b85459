# A local dev agent (server and client in one process) for trying
# jupyter_remote's Nomad backend on one machine:
#
#   nomad agent -dev -config nomad_jobs/agent-dev.hcl
#   export NOMAD_ADDR=http://127.0.0.1:4646 JUPYTER_REMOTE_BACKEND=nomad
#
# -dev keeps state in a temporary directory and has no ACLs. Everything binds to
# 127.0.0.1, so workers reach a controller on this machine and nothing else
# reaches the agent.

bind_addr = "127.0.0.1"

advertise {
  http = "127.0.0.1"
  rpc  = "127.0.0.1"
  serf = "127.0.0.1"
}

ports {
  http = 4646
  rpc  = 4647
  serf = 4648
}

# raw_exec runs workers as plain processes with this machine's Python; it is
# off by default because it does not isolate tasks. Fine on your own machine.
plugin "raw_exec" {
  config {
    enabled = true
  }
}

disable_update_check = true
