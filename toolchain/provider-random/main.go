// Command pulumi-resource-random serves the upstream Terraform random provider
// (github.com/terraform-providers/terraform-provider-random, through our shim
// module) with the Pulumi Terraform bridge, plugin framework flavour.
//
// The provider module published by Pulumi is not served by the Go module
// proxy we can reach, so the mapping below is our own: every random_* resource
// becomes random:index/<camel>:<Camel> (random_id -> random:index/randomId:RandomId),
// which is the naming the @pulumi/random npm package uses. See README.md for
// what it lacks compared with Pulumi's build.
package main

import (
	"context"
	"fmt"

	pftfbridge "github.com/pulumi/pulumi-terraform-bridge/v3/pkg/pf/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge"
	"github.com/pulumi/pulumi-terraform-bridge/v3/pkg/tfbridge/tokens"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource/plugin"

	"github.com/terraform-providers/terraform-provider-random/shim"
)

// version is set with -ldflags "-X main.version=...".
var version = "0.0.0-dev"

func main() {
	ctx := context.Background()
	info := tfbridge.ProviderInfo{
		P:           pftfbridge.ShimProvider(shim.NewProvider()),
		Name:        "random",
		Version:     version,
		DisplayName: "random",
		Repository:  "https://github.com/hashicorp/terraform-provider-random",
		// Have previews run the Terraform plan, as Pulumi's own build does.
		EnableAccurateBridgePreview: true,
		// No tfgen run here, so no recorded metadata (aliases, renames):
		// the bridge derives names from the Terraform schema at run time.
		MetadataInfo: tfbridge.NewProviderMetadata([]byte("{}")),
	}
	// An empty prefix keeps "random_" in the name: random_id -> RandomId.
	info.MustComputeTokens(tokens.SingleModule("", "index", tokens.MakeStandard("random")))
	pftfbridge.Main(ctx, "random", info, pftfbridge.ProviderMetadata{
		XGetSchema: func(context.Context, plugin.GetSchemaRequest) ([]byte, error) {
			return nil, fmt.Errorf("this build of pulumi-resource-random carries no package schema")
		},
	})
}
