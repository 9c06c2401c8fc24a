# hash
// slash
/* block
 comment */ a = 1 b = 2, c = true
