# Terraform and provider versions. State lives in a GCS bucket created once by hand (see
# docs/deploy.md); pass it with `terraform init -backend-config=bucket=<bucket>`.
terraform {
  required_version = ">= 1.7"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 8.0.0 is what `make test-infra` builds and tests (from the Go module proxy, served by
      # a filesystem mirror); any later 8.x from the registry satisfies this too.
      version = "~> 8.0"
    }
  }

  backend "gcs" {
    prefix = "leadpipe"
  }
}

provider "google" {
  project = var.project_id
  region  = var.region
}
