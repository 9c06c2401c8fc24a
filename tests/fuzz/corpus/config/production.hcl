storage "consul" {
address = "127.0.0.1:8500"
path = "vault/"
}
listener "tcp" {
address = "0.0.0.0:8200"
tls_cert_file = "/path/to/cert.pem"
tls_key_file = "/path/to/key.pem"
}
ha_storage "consul" {
address = "127.0.0.1:8500"
path = "vault-ha/"
}
cluster_addr = "https://vault-1:8201"
api_addr = "https://vault-1:8200"
