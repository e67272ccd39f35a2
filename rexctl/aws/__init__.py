"""AWS adapters: the only package that touches boto3. One module per AWS service."""
