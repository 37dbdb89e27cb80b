module github.com/leadpipe/leadpipe/replayer

go 1.26.8
