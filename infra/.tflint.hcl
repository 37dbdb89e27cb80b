# tflint for infra/ (run by `make test-infra`). The terraform ruleset is bundled with tflint,
# so this works offline; the google ruleset plugin would be downloaded from GitHub releases,
# which these machines cannot reach, so it is not enabled.
config {
  call_module_type = "none"
}

plugin "terraform" {
  enabled = true
  preset  = "all"
}
