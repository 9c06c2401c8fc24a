path "secret/data/*" {
  capabilities = ["create", "update"]
}
