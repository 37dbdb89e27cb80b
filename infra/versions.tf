# Terraform and provider versions. State lives in a GCS bucket created once by hand (see
# docs/deploy.md); pass it with `terraform init -backend-config=bucket=<bucket>`.
terraform {
  required_version = ">= 1.5"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.0"
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
