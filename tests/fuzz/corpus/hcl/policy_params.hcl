path "secret/data/foo" {
  capabilities = ["read"]
  allowed_parameters = {
    "foo" = []
    "bar" = ["zip", "zap"]
  }
  denied_parameters = { "*" = [] }
  min_wrapping_ttl = "1s"
}
