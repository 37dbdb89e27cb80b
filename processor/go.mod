module github.com/leadpipe/leadpipe/processor

go 1.26.8
