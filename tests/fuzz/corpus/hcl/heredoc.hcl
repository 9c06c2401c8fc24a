policy = <<EOT
path "a" { capabilities = ["read"] }
EOT
