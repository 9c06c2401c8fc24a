storage "inmem" {}
listener "tcp" { address = 5 }
