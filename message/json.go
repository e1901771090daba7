package message

import "errors"

// MarshalJSON encodes the message in the seed shape (see the package doc).
func (m Message) MarshalJSON() ([]byte, error) {
	return nil, errors.New("message: MarshalJSON not implemented yet")
}
