module github.com/leadpipe/leadpipe/ingest

go 1.26.8
