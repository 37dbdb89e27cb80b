package service

import "github.com/leadpipe/leadpipe/common/pii"

// piiHasher is the lookup index's hasher, nil when no key is configured.
func piiHasher(key string) (*pii.Hasher, error) {
	if key == "" {
		return nil, nil
	}
	return pii.NewHasher([]byte(key))
}
