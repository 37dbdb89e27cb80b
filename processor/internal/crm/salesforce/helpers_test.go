package salesforce_test

import "github.com/leadpipe/leadpipe/common/failure"

func failureClass(err error) string {
	c, _ := failure.ClassOf(err)
	return string(c)
}
