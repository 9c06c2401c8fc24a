storage "raft" {
  path = "/opt/raft"
  node_id = "n1"
  retry_join { leader_api_addr = "https://a:8200" }
}
