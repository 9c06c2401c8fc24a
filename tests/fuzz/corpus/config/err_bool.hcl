storage "inmem" {}
disable_mlock = "maybe"
