// Package shim exposes the upstream random provider, whose constructor lives
// in an internal package, to our bridged provider. Its module path sits under
// the upstream's so that Go allows the internal import.
package shim

import (
	"github.com/hashicorp/terraform-plugin-framework/provider"
	upstream "github.com/terraform-providers/terraform-provider-random/internal/provider"
)

// NewProvider returns the upstream Terraform plugin framework provider.
func NewProvider() provider.Provider { return upstream.New() }
