k1 k2 = "v"
