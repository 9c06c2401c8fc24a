storage "inmem" {}
listener "tcp" {
 tls_cert_file = "c" tls_key_file = "k"
 tls_min_version = "tls13"
 max_request_size = -1
 max_request_duration = "2m"
}
