module lutf.example/gohello

go 1.19
